import { pipeline, Transform, type Readable } from 'node:stream'

/**
 * The stream of `source` after its first `count` bytes. Used when an upstream ignores `Range` and answers
 * 200 with the whole blob: the caller still gets the bytes from the offset it asked for. Errors and
 * destruction propagate both ways (destroying the result destroys the source).
 */
export function skipBytes (source: Readable, count: number): Readable {
  let remaining = count
  const skipper = new Transform({
    transform (chunk: Buffer, _encoding, callback) {
      if (remaining >= chunk.byteLength) {
        remaining -= chunk.byteLength
        callback()
        return
      }
      const rest = remaining === 0 ? chunk : chunk.subarray(remaining)
      remaining = 0
      callback(null, rest)
    },
  })
  // pipeline reports every failure on `skipper`; the callback and the listener only keep the copies it
  // also delivers to the source (destroyed with the error when the consumer hangs up) from being unhandled.
  source.on('error', () => {})
  return pipeline(source, skipper, () => {})
}
