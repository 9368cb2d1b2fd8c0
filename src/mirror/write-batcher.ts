import type { BlobWriter } from '../store/blob-store.js'

/** Received bytes are written once this many are pending (or on flush): few, large writes. */
const WRITE_BATCH = 1 << 20

/**
 * A download's bytes on their way to the store: kept in order, written in vectored batches, one batch at a
 * time, in the background. The first write error is kept; it fails the download where it flushes.
 */
export class WriteBatcher {
  readonly writer: BlobWriter
  readonly #onWritten: (written: number) => void
  #pending: Buffer[] = []
  #pendingBytes = 0
  #written = 0
  #draining: Promise<void> | undefined
  #error: Error | undefined

  constructor (writer: BlobWriter, onWritten: (written: number) => void) {
    this.writer = writer
    this.#onWritten = onWritten
  }

  /** Bytes the store has taken. */
  get written (): number { return this.#written }
  get pendingBytes (): number { return this.#pendingBytes }
  /** The first write error, if one happened. */
  get error (): Error | undefined { return this.#error }

  push (chunk: Buffer): void {
    this.#pending.push(chunk)
    this.#pendingBytes += chunk.byteLength
    if (this.#pendingBytes >= WRITE_BATCH) this.#startDrain()
  }

  /** Writes everything pushed and waits for it (rethrowing a write error). */
  async flush (): Promise<void> {
    this.#startDrain()
    while (this.#draining !== undefined) await this.#draining
    if (this.#error !== undefined) throw this.#error
  }

  /** Waits for a write under way to end, whatever its outcome (before aborting the writer). */
  async settle (): Promise<void> {
    await this.#draining?.catch(() => {})
  }

  #startDrain (): void {
    if (this.#draining !== undefined || this.#pending.length === 0 || this.#error !== undefined) return
    this.#draining = this.#drain().finally(() => { this.#draining = undefined })
    // A write error surfaces where the download flushes; this only keeps it from being unhandled.
    this.#draining.catch(() => {})
  }

  async #drain (): Promise<void> {
    while (this.#pending.length > 0) {
      const batch = this.#pending
      const n = this.#pendingBytes
      this.#pending = []
      this.#pendingBytes = 0
      try {
        await this.writer.writev(batch)
      } catch (err) {
        this.#error = err as Error
        throw err
      }
      this.#written += n
      this.#onWritten(this.#written)
    }
  }
}
