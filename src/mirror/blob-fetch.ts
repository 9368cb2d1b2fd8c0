import { Readable } from 'node:stream'
import { RecentChunks } from './recent-chunks.js'
import type { Logger } from 'pino'
import type { Digest } from '../oci/index.js'
import type { BlobStore, BlobWriter, ByteRange } from '../store/blob-store.js'

/** One place the bytes can come from, asked for everything from `offset` on. */
export interface BlobSourceAttempt {
  readonly origin: string
  open (offset: number, signal: AbortSignal): Promise<{ readonly body: Readable, readonly totalSize?: number }>
}

export interface BlobFetchOptions {
  readonly digest: Digest
  readonly expectedSize?: number
  readonly store: BlobStore
  /** Tried in order; a broken stream resumes from the byte reached on the next one. */
  readonly sources: readonly BlobSourceAttempt[]
  readonly logger: Logger
  readonly onBytes?: (origin: string, bytes: number) => void
  /** Bounds the whole download, detached from any client. */
  readonly timeoutMs: number
}

/** Most bytes a reader holds or sends at once: 50 clients of one download stay within a few MiB. */
const READ_CHUNK = 256 << 10
/** Recent bytes kept in memory for readers that keep up, and how far the disk may trail the network. */
const RECENT_BYTES = 8 << 20
const MAX_PENDING = 4 << 20
/** Received bytes are written once this many are pending (or the source ends): few, large writes. */
const WRITE_BATCH = 1 << 20

export class BlobFetchError extends Error {
  override readonly name = 'BlobFetchError'
  readonly code = 'ERR_BLOB_FETCH'
}

/**
 * One download of one blob, shared by every client that wants it while it runs. Bytes go to the store's
 * temporary file; each reader streams from there as they arrive. A reader never sends the last byte of its
 * range before the whole blob verified, so a client can never take a corrupt blob for a complete one.
 */
export class BlobFetch {
  readonly digest: Digest
  #size: number | undefined
  #written = 0
  /** Bytes taken from sources, in order; ahead of #written by what is still pending. */
  #received = 0
  #pending: Buffer[] = []
  #pendingBytes = 0
  #flushing: Promise<void> | undefined
  readonly #recent = new RecentChunks(RECENT_BYTES)
  #state: 'running' | 'done' | 'failed' = 'running'
  #error: Error | undefined
  #writer: BlobWriter | undefined
  #version = 0
  /** Sources that answered with bytes for this download. */
  readonly #origins = new Set<string>()
  #wake: Array<() => void> = []
  readonly #options: BlobFetchOptions
  readonly #controller = new AbortController()
  /** Settles once the first source answered (the size may be known then) or every source failed. */
  readonly ready: Promise<void>
  /** Settles when the blob is committed or the fetch failed; never rejects. */
  readonly done: Promise<void>
  #resolveReady!: () => void
  #rejectReady!: (err: Error) => void

  constructor (options: BlobFetchOptions) {
    this.#options = options
    this.digest = options.digest
    this.#size = options.expectedSize
    this.ready = new Promise((resolve, reject) => { this.#resolveReady = resolve; this.#rejectReady = reject })
    this.ready.catch(() => {})
    this.done = this.#run().catch(() => {})
  }

  get size (): number | undefined { return this.#size }
  get state (): 'running' | 'done' | 'failed' { return this.#state }
  get error (): Error | undefined { return this.#error }
  /** The sources that answered (for a download that failed verification: whom not to trust with it). */
  get origins (): readonly string[] { return [...this.#origins] }

  /** Stops the download (shutdown); readers fail. */
  abort (reason: Error): void {
    this.#controller.abort(reason)
  }

  async #run (): Promise<void> {
    const { store, digest, sources, logger } = this.#options
    const timer = setTimeout(() => this.#controller.abort(new BlobFetchError(`download of ${digest} timed out`)), this.#options.timeoutMs)
    const signal = this.#controller.signal
    let lastError: Error | undefined
    try {
      for (const source of sources) {
        if (signal.aborted) break
        try {
          const { body, totalSize } = await source.open(this.#received, signal)
          // The temporary file is made only once a source answered: a miss costs no disk work.
          try {
            this.#writer ??= await store.begin(digest, this.#options.expectedSize)
          } catch (err) {
            body.on('error', () => {}).destroy()
            throw err
          }
          if (this.#size === undefined && totalSize !== undefined) this.#size = totalSize
          this.#resolveReady()
          this.#notify()
          this.#origins.add(source.origin)
          for await (const chunk of body as AsyncIterable<Buffer>) {
            this.#accept(chunk)
            this.#options.onBytes?.(source.origin, chunk.byteLength)
            // The disk trails the network by at most MAX_PENDING; past that, reading the source waits.
            if (this.#pendingBytes >= MAX_PENDING) await this.#flush()
          }
          if (this.#size === undefined || this.#received >= this.#size) {
            lastError = undefined
            break
          }
          lastError = new BlobFetchError(`${source.origin} ended ${digest} at byte ${this.#received} of ${this.#size}`)
        } catch (err) {
          lastError = err as Error
          // Wrong bytes, or a definitive "not found": no other source is asked.
          const code = (err as { code?: string }).code
          if (code === 'ERR_DIGEST_MISMATCH' || code === 'ERR_UPSTREAM_NOT_FOUND' || code === 'ERR_PEER_NOT_FOUND') break
        }
        logger.warn({ digest, origin: source.origin, offset: this.#received, err: lastError?.message }, 'blob source failed; trying the next one')
      }
      if (lastError !== undefined) throw lastError
      if (signal.aborted) throw signal.reason as Error
      await this.#flush()
      if (this.#writer === undefined) throw new BlobFetchError(`no source for ${digest}`)
      await this.#writer.commit()
      this.#size = this.#written
      this.#state = 'done'
      logger.debug({ digest, size: this.#written }, 'blob fetched and verified')
    } catch (err) {
      this.#error = err as Error
      this.#state = 'failed'
      await this.#flushing?.catch(() => {})
      await this.#writer?.abort()
      this.#rejectReady(err as Error)
      logger.warn({ digest, err: (err as Error).message }, 'blob fetch failed; nothing kept')
    } finally {
      clearTimeout(timer)
      this.#recent.clear()
      this.#notify()
    }
  }

  /** Takes a chunk from the source: readers may have it at once; the disk write follows in the background. */
  #accept (chunk: Buffer): void {
    this.#recent.push(chunk)
    this.#received += chunk.byteLength
    this.#pending.push(chunk)
    this.#pendingBytes += chunk.byteLength
    // Readers take recent bytes from memory (the window outlasts a batch), so the disk can wait for a batch.
    if (this.#pendingBytes >= WRITE_BATCH) this.#startDrain()
    this.#notify()
  }

  #startDrain (): void {
    if (this.#flushing !== undefined || this.#pending.length === 0) return
    this.#flushing = this.#drain().finally(() => { this.#flushing = undefined })
    // A write error surfaces where the fetch awaits #flush(); this only keeps it from being unhandled.
    this.#flushing.catch(() => {})
  }

  /** Writes pending chunks in batches until none are left; the first write error fails the fetch. */
  async #drain (): Promise<void> {
    while (this.#pending.length > 0) {
      const batch = this.#pending
      const n = this.#pendingBytes
      this.#pending = []
      this.#pendingBytes = 0
      await (this.#writer as BlobWriter).writev(batch)
      this.#written += n
      this.#recent.trim(this.#written)
      this.#notify()
    }
  }

  /** Writes everything received and waits for it (rethrowing a write error). */
  async #flush (): Promise<void> {
    this.#startDrain()
    while (this.#flushing !== undefined) await this.#flushing
  }

  #notify (): void {
    this.#version++
    const wake = this.#wake
    this.#wake = []
    for (const w of wake) w()
  }

  #changed (since: number): Promise<void> {
    if (this.#version !== since) return Promise.resolve()
    return new Promise((resolve) => this.#wake.push(resolve))
  }

  /** A stream of the blob (or a range of it) as it downloads; errors if the download fails. */
  reader (range?: ByteRange): Readable {
    return Readable.from(this.#read(range), { objectMode: false, highWaterMark: READ_CHUNK })
  }

  async * #read (range?: ByteRange): AsyncGenerator<Buffer> {
    let pos = range?.start ?? 0
    for (;;) {
      const version = this.#version
      if (this.#state === 'failed') throw this.#error ?? new BlobFetchError('download failed')
      const endExclusive = range === undefined ? (this.#size ?? Infinity) : range.end + 1
      if (this.#state === 'done') {
        if (pos >= endExclusive) return
        const rest = await this.#options.store.open(this.digest, { start: pos, end: Math.min(endExclusive, this.#written) - 1 })
        if (rest === undefined) throw new BlobFetchError(`${this.digest} vanished from the store while being served`)
        yield * rest as AsyncIterable<Buffer>
        return
      }
      let available = Math.min(this.#received, endExclusive)
      // Hold back our last byte until the digest verified.
      if (available >= endExclusive) available = endExclusive - 1
      if (pos < available) {
        // Network chunks are small: gather up to READ_CHUNK so the client socket sees few, large writes.
        const limit = Math.min(available, pos + READ_CHUNK)
        const parts: Buffer[] = []
        let n = 0
        for (let part = this.#recent.slice(pos, limit); part !== undefined; part = this.#recent.slice(pos + n, limit)) {
          parts.push(part)
          n += part.byteLength
        }
        if (n > 0) {
          pos += n
          yield parts.length === 1 ? parts[0] as Buffer : Buffer.concat(parts, n)
          continue
        }
        // Fallen behind the in-memory window: those bytes are on disk.
        let chunk: Buffer | undefined
        try {
          chunk = await this.#writer?.readBack(pos, Math.max(0, Math.min(available, this.#written, pos + READ_CHUNK) - pos))
        } catch {
          // The writer closed under us (commit or failure): the state tells what to do next.
          chunk = undefined
        }
        if (chunk !== undefined && chunk.byteLength > 0) {
          pos += chunk.byteLength
          yield chunk
          continue
        }
      }
      await this.#changed(version)
    }
  }
}
