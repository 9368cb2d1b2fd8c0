import { watch, type FSWatcher } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { basename, dirname } from 'node:path'
import type { Logger } from 'pino'

export interface WatchedFileOptions<T> {
  readonly path: string
  readonly logger: Logger
  /** What the file is, in log lines: `pre-cache file`. */
  readonly what: string
  /** The file's text to its value; throws (a ConfigError, one line) when the text is not acceptable. */
  readonly parse: (text: string, name: string) => T
  /** Hears each new value that parsed. */
  readonly onValue: (value: T) => void
  /** One line on what a new value holds, for the log; optional. */
  readonly describe?: (value: T) => Record<string, unknown>
  /** How often the file is read again in case a change was not seen; default 2 s. */
  readonly pollMs?: number
}

/**
 * A configuration file that takes effect while flotilla runs (the pre-cache sets, the redirector's
 * regions), watched: a change is read at once (the directory is watched, because a ConfigMap update swaps a
 * symlink rather than writing the file) and every `pollMs` anyway (watches miss changes on some
 * filesystems). A version that does not parse is logged once, reported in `error`, and the last good value
 * stays in force.
 */
export class WatchedFile<T> {
  readonly #o: WatchedFileOptions<T>
  #watcher: FSWatcher | undefined
  #poll: NodeJS.Timeout | undefined
  #debounce: NodeJS.Timeout | undefined
  #lastText: string | undefined
  #reading: Promise<void> = Promise.resolve()
  #isClosed = false
  error: string | undefined
  loadedAt: Date | undefined

  constructor (options: WatchedFileOptions<T>) {
    this.#o = options
  }

  get path (): string {
    return this.#o.path
  }

  /** Reads the file once (a missing or broken file is reported, not thrown) and starts watching it. */
  async start (): Promise<void> {
    await this.#read()
    try {
      this.#watcher = watch(dirname(this.#o.path), { persistent: false }, () => { this.#soon() })
      this.#watcher.on('error', () => { this.#watcher?.close() })
    } catch (err) {
      this.#o.logger.warn({ err, file: this.#o.path }, `cannot watch the ${this.#o.what}'s directory; reading it every few seconds`)
    }
    this.#poll = setInterval(() => { this.#soon() }, this.#o.pollMs ?? 2000)
    this.#poll.unref()
  }

  close (): void {
    this.#isClosed = true
    this.#watcher?.close()
    clearInterval(this.#poll)
    clearTimeout(this.#debounce)
  }

  /** Several events come with one swap: read once they settle. */
  #soon (): void {
    if (this.#isClosed || this.#debounce !== undefined) return
    this.#debounce = setTimeout(() => {
      this.#debounce = undefined
      this.#reading = this.#reading.then(async () => { await this.#read() })
    }, 50)
    this.#debounce.unref()
  }

  async #read (): Promise<void> {
    if (this.#isClosed) return
    const file = this.#o.path
    let text: string
    try {
      text = await readFile(file, 'utf8')
    } catch (err) {
      this.#lastText = undefined
      this.#fail(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
      return
    }
    if (text === this.#lastText) return
    this.#lastText = text
    try {
      const value = this.#o.parse(text, basename(file))
      this.error = undefined
      this.loadedAt = new Date()
      this.#o.logger.info({ file, ...this.#o.describe?.(value) }, `${this.#o.what} loaded`)
      this.#o.onValue(value)
    } catch (err) {
      this.#fail((err as Error).message)
    }
  }

  /** One log line per distinct problem, not one per poll. */
  #fail (message: string): void {
    if (this.error === message) return
    this.error = message
    this.#o.logger.error({ file: this.#o.path, keeping: this.loadedAt === undefined ? 'nothing yet' : 'the last good version' }, `${this.#o.what} not taken: ${message}`)
  }
}
