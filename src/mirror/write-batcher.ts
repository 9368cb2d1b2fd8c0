import type { BlobWriter } from '../store/blob-store.js'

/** Received bytes are handed to the writer once this many are pending (or on flush): few, large writes. */
const WRITE_BATCH = 1 << 20

/**
 * A download's bytes on their way to the store: kept in order, written in vectored batches in the background.
 * A batch is handed to the writer as soon as it is full, even while earlier ones are still being written (the
 * writer places each at its own offset and takes its bytes, hashing them, when called); `written` only moves
 * over batches that are stored, in order. The first write error is kept; it fails the download where it
 * flushes.
 */
export class WriteBatcher {
  readonly writer: BlobWriter
  readonly #onWritten: (written: number) => void
  #pending: Buffer[] = []
  #pendingBytes = 0
  /** Batches handed to the writer and not yet stored, in order. */
  readonly #writing: Array<{ readonly done: Promise<void>, readonly bytes: number }> = []
  #unwritten = 0
  #written = 0
  #settling: Promise<void> | undefined
  #error: Error | undefined

  constructor (writer: BlobWriter, onWritten: (written: number) => void) {
    this.writer = writer
    this.#onWritten = onWritten
  }

  /** Bytes the store has taken. */
  get written (): number { return this.#written }
  /** Bytes received and not yet stored (waiting for a batch, or being written). */
  get pendingBytes (): number { return this.#pendingBytes + this.#unwritten }
  /** The first write error, if one happened. */
  get error (): Error | undefined { return this.#error }

  push (chunk: Buffer): void {
    this.#pending.push(chunk)
    this.#pendingBytes += chunk.byteLength
    if (this.#pendingBytes >= WRITE_BATCH) this.handOver()
  }

  /**
   * Hands every byte pushed to the writer now (a short last batch too): from then on the writer has taken, and
   * hashed, all of them, whether or not they are stored yet.
   */
  handOver (): void {
    if (this.#pending.length === 0 || this.#error !== undefined) return
    const batch = this.#pending
    const bytes = this.#pendingBytes
    this.#pending = []
    this.#pendingBytes = 0
    let done: Promise<void>
    try {
      done = this.writer.writev(batch)
    } catch (err) {
      done = Promise.reject(err)
    }
    // A write error surfaces where the download flushes; this only keeps it from being unhandled.
    done.catch(() => {})
    this.#writing.push({ done, bytes })
    this.#unwritten += bytes
    this.#settling ??= this.#settle().finally(() => { this.#settling = undefined })
  }

  /** Writes everything pushed and waits for it (rethrowing a write error). */
  async flush (): Promise<void> {
    this.handOver()
    while (this.#settling !== undefined) await this.#settling
    if (this.#error !== undefined) throw this.#error
  }

  /** Waits for the writes under way to end, whatever their outcome (before aborting the writer). */
  async settle (): Promise<void> {
    while (this.#settling !== undefined) await this.#settling
  }

  /** Moves `written` over each batch once it is stored, in order; stops at the first error. */
  async #settle (): Promise<void> {
    for (let next = this.#writing[0]; next !== undefined; next = this.#writing[0]) {
      try {
        await next.done
      } catch (err) {
        this.#error ??= err as Error
      }
      this.#writing.shift()
      this.#unwritten -= next.bytes
      if (this.#error !== undefined) continue
      this.#written += next.bytes
      this.#onWritten(this.#written)
    }
  }
}
