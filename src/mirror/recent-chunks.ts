/**
 * The most recent bytes of a download, kept in memory so clients that keep up are served without touching
 * the disk. Chunks are dropped from the front past the budget, but only once they are safely written.
 */
export class RecentChunks {
  readonly #chunks: Array<{ readonly start: number, readonly buf: Buffer }> = []
  readonly #maxBytes: number
  #bytes = 0
  #end = 0

  constructor (maxBytes: number) {
    this.#maxBytes = maxBytes
  }

  /** First byte offset still held (== end when empty). */
  get start (): number {
    return this.#chunks[0]?.start ?? this.#end
  }

  push (buf: Buffer): void {
    this.#chunks.push({ start: this.#end, buf })
    this.#end += buf.byteLength
    this.#bytes += buf.byteLength
  }

  /** Drops old chunks past the budget, never one that ends after `durableEnd` (not yet on disk). */
  trim (durableEnd: number): void {
    for (;;) {
      const first = this.#chunks[0]
      if (first === undefined || this.#bytes - first.buf.byteLength < this.#maxBytes || first.start + first.buf.byteLength > durableEnd) return
      this.#chunks.shift()
      this.#bytes -= first.buf.byteLength
    }
  }

  /** Bytes from `pos` up to `limit` (exclusive) out of one chunk, without copying; undefined if not held. */
  slice (pos: number, limit: number): Buffer | undefined {
    if (pos < this.start || pos >= Math.min(limit, this.#end)) return undefined
    let lo = 0
    let hi = this.#chunks.length - 1
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1
      if ((this.#chunks[mid] as { start: number }).start <= pos) lo = mid
      else hi = mid - 1
    }
    const c = this.#chunks[lo] as { start: number, buf: Buffer }
    return c.buf.subarray(pos - c.start, Math.min(c.buf.byteLength, limit - c.start))
  }

  clear (): void {
    this.#chunks.length = 0
    this.#bytes = 0
  }
}
