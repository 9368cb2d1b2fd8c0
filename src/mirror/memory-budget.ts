/**
 * The bytes every running download holds in memory, against one bound for the process. Over it, each download
 * keeps only bytes its disk has not taken yet, and reads its source only while fewer than 256 KiB wait for
 * the disk (BlobFetch): readers that fall behind read the temporary file instead (the page cache). So 50
 * downloads at once hold about the bound plus 256 KiB each, not 50 windows of 8 MiB.
 */
export class MemoryBudget {
  readonly maxBytes: number
  #held = 0

  constructor (maxBytes: number) {
    if (!(maxBytes > 0)) throw new TypeError(`MemoryBudget: maxBytes must be > 0, got ${maxBytes}`)
    this.maxBytes = maxBytes
  }

  /** Bytes held now by every download. */
  get held (): number { return this.#held }
  get isOver (): boolean { return this.#held > this.maxBytes }

  take (bytes: number): void { this.#held += bytes }
  give (bytes: number): void { this.#held -= bytes }
}
