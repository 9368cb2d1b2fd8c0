import type { FileHandle } from 'node:fs/promises'
import { Readable, type Writable } from 'node:stream'
import { SendGate, endAndWait, type Sendable, type ZeroCopy } from '../http/sendable.js'

/** Bytes per read: the default 64 KiB halves loopback throughput. */
const CHUNK = 1 << 20
/** Reads a sender keeps in flight: one being written while the next is read. */
const IN_FLIGHT = 2
/** Released buffers kept for the next sender; beyond this they are left to the GC. */
const POOL_LIMIT = 16
const pool: Buffer[] = []
/** Below this, a range is read and written here: starting the addon's thread would cost more than it saves. */
const ZERO_COPY_MIN = 256 << 10

function takeBuffer (): Buffer {
  return pool.pop() ?? Buffer.allocUnsafeSlow(CHUNK)
}

function giveBuffer (buffer: Buffer): void {
  if (pool.length < POOL_LIMIT) pool.push(buffer)
}

/**
 * Bytes `[start, end]` of an open file, closing the handle when done or destroyed. As a Readable it reads fresh
 * 1 MiB chunks (a consumer may keep them). `sendTo` is the hot path of a warm GET: it writes chunks read into
 * pooled buffers that return to the pool only when the destination's write callback says the bytes left,
 * so serving a blob allocates nothing per chunk (with fresh chunks, the collector took more CPU than the
 * socket writes).
 */
export class FileRangeStream extends Readable implements Sendable {
  readonly #handle: FileHandle
  /** Exclusive. */
  readonly #end: number
  #position: number
  #isSending = false

  /** `end` is inclusive, as in HTTP ranges and `createReadStream`, and clamped to the file's `size`. */
  constructor (handle: FileHandle, size: number, start = 0, end = size - 1) {
    super({ highWaterMark: CHUNK })
    if (!(Number.isSafeInteger(start) && Number.isSafeInteger(end) && start >= 0 && end >= start - 1)) throw new RangeError(`FileRangeStream: bad range ${start}-${end}`)
    this.#handle = handle
    this.#position = start
    this.#end = Math.max(start, Math.min(end + 1, size))
  }

  override _read (): void {
    if (this.#isSending) return
    const length = Math.min(CHUNK, this.#end - this.#position)
    if (length <= 0) {
      this.push(null)
      return
    }
    const buffer = Buffer.allocUnsafe(length)
    this.#readInto(buffer, length).then((n) => {
      this.push(n === buffer.length ? buffer : buffer.subarray(0, n))
    }, (err: unknown) => { this.destroy(err as Error) })
  }

  override _destroy (error: Error | null, callback: (error?: Error | null) => void): void {
    this.#handle.close().then(() => { callback(error) }, (closeErr: unknown) => { callback(error ?? closeErr as Error) })
  }

  /**
   * Writes the rest of the range to `dest`, ends it and waits until it finished; the handle is closed
   * whatever happens. Rejects when `dest` closes early, a read fails or this stream is destroyed (e.g. by
   * its abort signal). `onSent` hears each chunk's length once `dest` took it. With `zeroCopy`, a range of
   * 256 KiB or more goes by `sendfile(2)` when the destination allows it (`onSent` then hears the whole range
   * at the end).
   */
  async sendTo (dest: Writable, onSent?: (bytes: number) => void, zeroCopy?: ZeroCopy): Promise<void> {
    if (this.#isSending || this.readableFlowing !== null || this.destroyed) throw new Error('FileRangeStream: already being read')
    this.#isSending = true
    const length = this.#end - this.#position
    if (zeroCopy !== undefined && length >= ZERO_COPY_MIN) {
      const closed = new AbortController()
      const abort = (): void => { closed.abort(this.errored ?? new Error('FileRangeStream: destroyed while sending')) }
      this.once('close', abort)
      const sending = zeroCopy.send(dest, this.#handle.fd, this.#position, length, closed.signal)
      if (sending !== undefined) {
        try {
          const n = await sending
          this.#position += n
          onSent?.(n)
          await endAndWait(dest)
          return
        } finally {
          this.off('close', abort)
          this.destroy()
        }
      }
      this.off('close', abort)
    }
    let inFlight = 0
    const gate = new SendGate(this, dest, 'FileRangeStream')
    try {
      while (this.#position < this.#end) {
        await gate.until(() => inFlight >= IN_FLIGHT)
        const buffer = takeBuffer()
        let n: number
        try {
          n = await this.#readInto(buffer, Math.min(CHUNK, this.#end - this.#position))
        } catch (err) {
          giveBuffer(buffer)
          throw err
        }
        gate.assertOpen()
        inFlight++
        dest.write(n === buffer.length ? buffer : buffer.subarray(0, n), (err) => {
          inFlight--
          // After a failed write the buffer is not reused: nothing says the bytes left.
          if (err == null) {
            giveBuffer(buffer)
            onSent?.(n)
          }
          gate.wakeUp()
        })
      }
      await gate.end()
    } finally {
      gate.close()
      this.destroy()
    }
  }

  /** Reads `length` bytes at the current position; a file shorter than the range is an error, never a short body. */
  async #readInto (buffer: Buffer, length: number): Promise<number> {
    const { bytesRead } = await this.#handle.read(buffer, 0, length, this.#position)
    if (bytesRead === 0) throw new Error(`file ended at byte ${this.#position}, before the range's end ${this.#end}`)
    this.#position += bytesRead
    return bytesRead
  }
}
