import type { Readable } from 'node:stream'

/**
 * Reads a whole body into memory unless it exceeds `limit` bytes, in which case the body is destroyed
 * (its socket cannot be reused halfway through) and undefined is returned.
 */
export async function readLimited (body: Readable, limit: number): Promise<Buffer | undefined> {
  const chunks: Buffer[] = []
  let total = 0
  for await (const chunk of body as AsyncIterable<Buffer>) {
    total += chunk.byteLength
    // Leaving the loop destroys the body through its iterator, which also swallows undici's abort error.
    if (total > limit) return undefined
    chunks.push(chunk)
  }
  return Buffer.concat(chunks, total)
}
