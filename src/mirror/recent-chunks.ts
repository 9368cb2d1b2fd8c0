import { MemoryBudget } from './memory-budget.js'

/**
 * The most recent bytes of a download, kept in memory so clients that keep up are served without touching
 * the disk. Chunks are dropped from the front past `maxBytes`, or past the process's `budget` (then every
 * chunk may go), but only once they are safely written.
 */
export class RecentChunks {
  readonly #chunks: Array<{ readonly start: number, readonly buf: Buffer }> = []
  readonly #maxBytes: number
  readonly #budget: MemoryBudget
  #bytes = 0
  #end = 0

  constructor (maxBytes: number, budget = new MemoryBudget(Number.MAX_SAFE_INTEGER)) {
    this.#maxBytes = maxBytes
    this.#budget = budget
  }

  /** Bytes held. */
  get bytes (): number { return this.#bytes }
  /** The process holds more than its bound: a download keeps only what its disk has not taken. */
  get isOverBudget (): boolean { return this.#budget.isOver }

  /** First byte offset still held (== end when empty). */
  get start (): number {
    return this.#chunks[0]?.start ?? this.#end
  }

  push (buf: Buffer): void {
    this.#chunks.push({ start: this.#end, buf })
    this.#end += buf.byteLength
    this.#bytes += buf.byteLength
    this.#budget.take(buf.byteLength)
  }

  /** Drops old chunks past `maxBytes` or the budget, never one that ends after `durableEnd` (not yet on disk). */
  trim (durableEnd: number): void {
    for (;;) {
      const first = this.#chunks[0]
      if (first === undefined || first.start + first.buf.byteLength > durableEnd) return
      if (this.#bytes - first.buf.byteLength < this.#maxBytes && !this.#budget.isOver) return
      this.#chunks.shift()
      this.#bytes -= first.buf.byteLength
      this.#budget.give(first.buf.byteLength)
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
    this.#budget.give(this.#bytes)
    this.#bytes = 0
  }
}
