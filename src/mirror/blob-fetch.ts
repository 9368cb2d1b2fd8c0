import type { Readable } from 'node:stream'
import type { Logger } from 'pino'
import type { ContentErrorCode } from '../errors/error-code.js'
import { FlotillaError } from '../errors/flotilla-error.js'
import { DownloadReader, type ReaderStep } from './download-reader.js'
import { ProgressSignal } from './progress-signal.js'
import { RecentChunks } from './recent-chunks.js'
import { describeOrigin, type BlobSourceAttempt, type SourceOrigin } from './blob-source.js'
import type { MemoryBudget } from './memory-budget.js'
import { WriteBatcher } from './write-batcher.js'
import type { Digest } from '../oci/index.js'
import type { BlobStore, ByteRange } from '../store/blob-store.js'

export interface BlobFetchOptions {
  readonly digest: Digest
  readonly expectedSize?: number
  readonly store: BlobStore
  /** Tried in order; a broken stream resumes from the byte reached on the next one. */
  readonly sources: readonly BlobSourceAttempt[]
  readonly logger: Logger
  readonly onBytes?: (origin: SourceOrigin, bytes: number) => void
  /** Bounds the whole download, detached from any client. */
  readonly timeoutMs: number
  /** A source that sends no byte for this long is dropped; the download resumes on the next one. Default 5 s. */
  readonly stallTimeoutMs?: number
  /** A reader that makes no progress for this long is cut, so its client can fall back. Default 2 × stallTimeoutMs. */
  readonly readerStallTimeoutMs?: number
  /** The process's bound on bytes downloads hold in memory; without it, only this download's own bounds. */
  readonly memory?: MemoryBudget
}

const DEFAULTS = { stallTimeoutMs: 5000 } as const

/** Most bytes a reader holds or sends at once: 50 clients of one download stay within a few MiB. */
const READ_CHUNK = 256 << 10
/** Recent bytes kept in memory for readers that keep up, and how far the disk may trail the network. */
const RECENT_BYTES = 8 << 20
const MAX_PENDING = 4 << 20
/** How far the disk may trail the network while the process is over its memory bound. */
const OVER_BUDGET_PENDING = 256 << 10

export type BlobFetchErrorCode = Extract<ContentErrorCode, 'ERR_BLOB_FETCH' | 'ERR_BLOB_STALLED' | 'ERR_BLOB_WINDOW_PASSED'>

export class BlobFetchError extends FlotillaError<BlobFetchErrorCode> {
  override readonly name = 'BlobFetchError'
  constructor (message: string, code: BlobFetchErrorCode = 'ERR_BLOB_FETCH') {
    super(code, message)
  }
}

/** One reader's progress: for the stall watchdog and, when nothing is kept, for how far the window may move. */
interface ReaderState {
  /** Next byte it takes; bytes before it are in its stream or sent. */
  pos: number
  /** What it waits for, if it waits: bytes not received yet, or the digest check before its last byte. */
  waitsFor: 'bytes' | 'verification' | undefined
  reader: DownloadReader | undefined
  /** `pos` at the watchdog's last look, and since when it has not moved. */
  seenPos: number
  idleSince: number
}

/** The source being read, for the watchdog. */
interface Streaming {
  readonly origin: SourceOrigin
  readonly body: Readable
  readonly attempt: AbortController
  seen: number
  idleSince: number
}

/**
 * One download of one blob, shared by every client that wants it while it runs. Bytes go to the store's
 * temporary file; each reader streams from there as they arrive. A reader never sends the last byte of its
 * range before the whole blob verified, so a client can never take a corrupt blob for a complete one.
 *
 * When the store has no room for the blob, its writer only hashes: the bytes then live in memory only, so the
 * source is held back to the slowest reader (a bounded window) and the blob is verified but not kept.
 * A watchdog drops a source that stops sending (the next one resumes from the byte reached) and cuts a reader
 * that stops making progress, so no client waits on a stalled stream for long.
 */
export class BlobFetch {
  readonly digest: Digest
  #size: number | undefined
  /** Bytes taken from sources, in order; ahead of what is written by what is still pending. */
  #received = 0
  readonly #recent: RecentChunks
  #state: 'running' | 'done' | 'failed' = 'running'
  #error: Error | undefined
  #disk: WriteBatcher | undefined
  /** The first store error (not a lack of room): it fails the fetch, no other source can help. */
  #storeError: Error | undefined
  #isKept = false
  /** The bytes hashed to the digest: readers may take their last byte (the store may still be syncing them). */
  #isVerified = false
  readonly #readers = new Set<ReaderState>()
  #streaming: Streaming | undefined
  /** Why the source is not being read: then its silence is not a stall. */
  #pausedOn: 'disk' | 'readers' | undefined
  #wakeSource: (() => void) | undefined
  readonly #stallMs: number
  readonly #readerStallMs: number
  /** Sources that answered with bytes for this download, in order. */
  readonly #origins: SourceOrigin[] = []
  readonly #progress = new ProgressSignal()
  readonly #options: BlobFetchOptions
  readonly #controller = new AbortController()
  /** Settles once the first source answered (the size may be known then) or every source failed. */
  readonly ready: Promise<void>
  /** Settles when the blob is committed or the fetch failed; never rejects. */
  readonly done: Promise<void>
  #resolveReady!: () => void
  #rejectReady!: (err: Error) => void

  constructor (options: BlobFetchOptions) {
    const stallMs = options.stallTimeoutMs ?? DEFAULTS.stallTimeoutMs
    const readerStallMs = options.readerStallTimeoutMs ?? 2 * stallMs
    if (!(stallMs > 0)) throw new TypeError(`BlobFetch: stallTimeoutMs must be > 0, got ${stallMs}`)
    if (!(readerStallMs > 0)) throw new TypeError(`BlobFetch: readerStallTimeoutMs must be > 0, got ${readerStallMs}`)
    this.#stallMs = stallMs
    this.#readerStallMs = readerStallMs
    this.#options = options
    this.#recent = new RecentChunks(RECENT_BYTES, options.memory)
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
  get origins (): readonly SourceOrigin[] { return this.#origins }
  /** The source that answered first: what a client of this download is counted as served by. */
  get answeredBy (): SourceOrigin | undefined { return this.#origins[0] }
  /** For the status page: when it started (ms since the epoch), bytes taken so far, the source read now. */
  readonly startedAt = Date.now()
  get bytesReceived (): number { return this.#received }
  get source (): SourceOrigin | undefined { return this.#streaming?.origin ?? this.#origins.at(-1) }
  /** The registry the blob is asked of (its upstream attempt), when it has one. */
  get registry (): string | undefined { return this.#options.sources.flatMap((s) => (s.origin.kind === 'upstream' ? [s.origin.registry] : []))[0] }
  /** False once the store had no room for the blob: it is streamed to its readers verified, but not kept. */
  get isKeeping (): boolean { return this.#state === 'done' ? this.#isKept : this.#state === 'running' && this.#writerKeeps }

  get #writerKeeps (): boolean { return this.#disk?.writer.isKeeping !== false }
  /** Bytes the store has taken. */
  get #written (): number { return this.#disk?.written ?? 0 }

  /**
   * Whether a reader of `range` can be served. False once the download failed, or when nothing is kept and the
   * bytes where the range starts have left memory: such a client needs a download of its own.
   */
  canServe (range?: ByteRange): boolean {
    return this.#state !== 'failed' && (this.isKeeping || (range?.start ?? 0) >= this.#recent.start)
  }

  /** Stops the download (shutdown); readers fail. */
  abort (reason: Error): void {
    this.#controller.abort(reason)
  }

  async #run (): Promise<void> {
    const { store, digest, sources, logger } = this.#options
    const timer = setTimeout(() => this.#controller.abort(new BlobFetchError(`download of ${digest} timed out`)), this.#options.timeoutMs)
    const watchdog = setInterval(() => this.#watch(), Math.max(10, Math.min(this.#stallMs, this.#readerStallMs) / 4))
    const signal = this.#controller.signal
    signal.addEventListener('abort', () => this.#wakeSource?.(), { once: true })
    let lastError: Error | undefined
    try {
      for (const source of sources) {
        if (signal.aborted) break
        // Its own signal, so that the watchdog can drop this source and not the download.
        const attempt = new AbortController()
        try {
          const opened = await source.open(this.#received, AbortSignal.any([signal, attempt.signal]))
          const { body, totalSize } = opened
          const origin = opened.origin ?? source.origin
          // The temporary file is made only once a source answered: a miss costs no disk work.
          try {
            this.#disk ??= new WriteBatcher(await store.begin(digest, this.#options.expectedSize), (written) => {
              // Bytes on disk may leave memory; bytes kept nowhere else only once every reader has them.
              this.#recent.trim(this.#writerKeeps ? written : this.#slowestReader())
              this.#progress.changed()
            })
          } catch (err) {
            body.on('error', () => {}).destroy()
            this.#storeError = err as Error
            throw err
          }
          if (this.#size === undefined && totalSize !== undefined) this.#size = totalSize
          this.#resolveReady()
          this.#progress.changed()
          this.#origins.push(origin)
          this.#streaming = { origin, body, attempt, seen: this.#received, idleSince: Date.now() }
          for await (const chunk of body as AsyncIterable<Buffer>) {
            if (this.#disk?.error !== undefined) throw this.#disk.error
            this.#accept(chunk)
            this.#options.onBytes?.(origin, chunk.byteLength)
            // The disk trails the network by at most MAX_PENDING (OVER_BUDGET_PENDING while the process is over
            // its memory bound); past that, reading the source waits.
            const pending = this.#disk?.pendingBytes ?? 0
            if (pending >= (this.#recent.isOverBudget ? OVER_BUDGET_PENDING : MAX_PENDING)) await this.#pause('disk', this.#disk?.flush() ?? Promise.resolve())
            // Kept nowhere but in memory: the source runs ahead of the slowest reader by the window at most.
            if (!this.#writerKeeps && this.#received - this.#slowestReader() > RECENT_BYTES) await this.#pause('readers', this.#slowestCatchesUp())
          }
          if (this.#size === undefined || this.#received >= this.#size) {
            lastError = undefined
            break
          }
          lastError = new BlobFetchError(`${describeOrigin(origin)} ended ${digest} at byte ${this.#received} of ${this.#size}`)
        } catch (err) {
          lastError = err as Error
          // The store failed (other than for room): no source can help.
          if (this.#storeError !== undefined || this.#disk?.error !== undefined) break
          // Wrong bytes, or a definitive "not found": no other source is asked.
          if (err instanceof FlotillaError && err.isFinal) break
        } finally {
          this.#streaming = undefined
        }
        logger.warn({ digest, origin: describeOrigin(source.origin), offset: this.#received, err: lastError?.message }, 'blob source failed; trying the next one')
      }
      if (lastError !== undefined) throw lastError
      if (signal.aborted) throw signal.reason as Error
      if (this.#disk === undefined) throw new BlobFetchError(`no source for ${digest}`)
      // Readers finish as soon as the bytes verified: not after the disk took them, nor after the fsync and rename.
      this.#disk.handOver()
      // After a write error no more bytes went to the writer: that error, not a digest mismatch, is the reason.
      if (this.#disk.error !== undefined) throw this.#disk.error
      this.#disk.writer.verify()
      this.#isVerified = true
      this.#progress.changed()
      await this.#disk.flush()
      this.#isKept = (await this.#disk.writer.commit()).isKept
      this.#size = this.#written
      this.#state = 'done'
      if (this.#isKept) logger.debug({ digest, size: this.#written }, 'blob fetched and verified')
      else logger.warn({ digest, size: this.#written }, 'blob fetched and verified, but not kept: no room in the store')
    } catch (err) {
      this.#error = err as Error
      this.#state = 'failed'
      await this.#disk?.settle()
      await this.#disk?.writer.abort()
      this.#rejectReady(err as Error)
      logger.warn({ digest, err: (err as Error).message }, 'blob fetch failed; nothing kept')
    } finally {
      clearTimeout(timer)
      clearInterval(watchdog)
      this.#releaseWindow()
      this.#progress.changed()
    }
  }

  /** Once the download ended its recent bytes go: at once, or (not kept: all its readers have) with its last reader. */
  #releaseWindow (): void {
    if (this.#state !== 'running' && (this.#isKept || this.#state === 'failed' || this.#readers.size === 0)) this.#recent.clear()
  }

  async #pause (on: 'disk' | 'readers', until: Promise<void>): Promise<void> {
    this.#pausedOn = on
    try {
      await until
    } finally {
      this.#pausedOn = undefined
    }
  }

  /** Where the slowest reader is (the end of what was received when there is none). */
  #slowestReader (): number {
    let min = this.#received
    for (const r of this.#readers) if (r.pos < min && r.reader?.destroyed !== true) min = r.pos
    return min
  }

  async #slowestCatchesUp (): Promise<void> {
    const signal = this.#controller.signal
    while (!signal.aborted && this.#received - this.#slowestReader() > RECENT_BYTES) {
      await new Promise<void>((resolve) => { this.#wakeSource = resolve })
      this.#wakeSource = undefined
    }
  }

  /**
   * Runs every quarter of the shortest bound: drops a source that sent nothing for stallTimeoutMs (unless it is
   * not being read), and cuts a reader that made no progress for readerStallTimeoutMs while it waited for bytes
   * that did not come, or, when nothing is kept, while it held every other reader back.
   */
  #watch (): void {
    const now = Date.now()
    const s = this.#streaming
    if (s !== undefined) {
      if (s.seen !== this.#received || this.#pausedOn !== undefined) {
        s.seen = this.#received
        s.idleSince = now
      } else if (now - s.idleSince >= this.#stallMs) {
        const err = new BlobFetchError(`${describeOrigin(s.origin)} sent no byte of ${this.digest} for ${now - s.idleSince} ms`, 'ERR_BLOB_STALLED')
        this.#streaming = undefined
        s.attempt.abort(err)
        s.body.destroy(err)
      }
    }
    for (const r of this.#readers) {
      const isStarved = r.waitsFor === 'bytes' ? this.#pausedOn !== 'readers' : r.waitsFor === undefined && !this.#writerKeeps
      if (r.pos !== r.seenPos || !isStarved) {
        r.seenPos = r.pos
        r.idleSince = now
      } else if (now - r.idleSince >= this.#readerStallMs) {
        r.reader?.destroy(new BlobFetchError(`a reader of ${this.digest} made no progress for ${now - r.idleSince} ms`, 'ERR_BLOB_STALLED'))
        // A reader waiting for bytes ends only once woken.
        this.#progress.changed()
      }
    }
  }

  /** Takes a chunk from the source: readers may have it at once; the disk write follows in the background. */
  #accept (chunk: Buffer): void {
    this.#recent.push(chunk)
    this.#received += chunk.byteLength
    // Readers take recent bytes from memory (the window outlasts a batch), so the disk can wait for a batch.
    this.#disk?.push(chunk)
    this.#progress.progressed(this.#received)
  }

  /**
   * A stream of the blob (or a range of it) as it downloads; errors if the download fails, if it stalls, or
   * (see canServe) if its bytes are no longer held. Its `sendTo` is the fast path to a client socket.
   */
  reader (range?: ByteRange): DownloadReader {
    const start = range?.start ?? 0
    // Registered now, not at the first read: from here on the window waits for this reader.
    const state: ReaderState = { pos: start, waitsFor: undefined, reader: undefined, seenPos: start, idleSince: Date.now() }
    const reader = new DownloadReader(async () => await this.#next(range, state), READ_CHUNK)
    state.reader = reader
    this.#readers.add(state)
    reader.once('close', () => {
      this.#readers.delete(state)
      this.#releaseWindow()
      this.#wakeSource?.()
    })
    return reader
  }

  /** What the reader takes next: bytes held in memory or on disk, the store's stream once committed, or the end. */
  async #next (range: ByteRange | undefined, r: ReaderState): Promise<ReaderStep> {
    for (;;) {
      const pos = r.pos
      const version = this.#progress.version
      if (this.#state === 'failed') throw this.#error ?? new BlobFetchError('download failed')
      const endExclusive = range === undefined ? (this.#size ?? Infinity) : range.end + 1
      if (this.#isVerified && pos >= Math.min(endExclusive, this.#received)) return END
      if (this.#state === 'done' && this.#isKept) {
        const rest = await this.#options.store.open(this.digest, { start: pos, end: Math.min(endExclusive, this.#written) - 1 })
        if (rest === undefined) throw new BlobFetchError(`${this.digest} vanished from the store while being served`)
        r.pos = endExclusive
        return { kind: 'stream', rest }
      }
      let available = Math.min(this.#received, endExclusive)
      // Hold back our last byte until the digest verified.
      if (available >= endExclusive && !this.#isVerified) available = endExclusive - 1
      if (pos < available) {
        // Slices of the chunks held (no copy), up to READ_CHUNK: the client socket sees few, large writes.
        const limit = Math.min(available, pos + READ_CHUNK)
        const parts: Buffer[] = []
        let n = 0
        for (let part = this.#recent.slice(pos, limit); part !== undefined; part = this.#recent.slice(pos + n, limit)) {
          parts.push(part)
          n += part.byteLength
        }
        if (n > 0) {
          r.pos = pos + n
          this.#wakeSource?.()
          return { kind: 'bytes', parts }
        }
        // Fallen behind the in-memory window: those bytes are on disk (a writer the disk filled under still has
        // what it wrote before).
        let chunk: Buffer | undefined
        try {
          chunk = await this.#disk?.writer.readBack(pos, Math.max(0, Math.min(available, this.#written, pos + READ_CHUNK) - pos))
        } catch {
          // The writer closed under us (commit or failure): the state tells what to do next.
          chunk = undefined
        }
        if (chunk !== undefined && chunk.byteLength > 0) {
          r.pos = pos + chunk.byteLength
          return { kind: 'bytes', parts: [chunk] }
        }
        if (!this.isKeeping) throw new BlobFetchError(`${this.digest} is not kept and byte ${pos} has left memory: this reader needs a download of its own`, 'ERR_BLOB_WINDOW_PASSED')
      }
      r.waitsFor = this.#received < endExclusive ? 'bytes' : 'verification'
      // Woken by new bytes only once a full read's worth arrived (or the range's end): not on every network chunk.
      await this.#progress.after(version, Math.min(pos + READ_CHUNK, endExclusive))
      r.waitsFor = undefined
      // Destroyed (cut, or its client went away) while waiting: its error is delivered once this returns.
      if (r.reader?.destroyed === true) return END
    }
  }
}

const END: ReaderStep = { kind: 'end' }
