/**
 * How a download tells its waiting readers that something changed. Each change bumps a version; a reader
 * takes the version, looks, and waits only if nothing changed since. New bytes wake at once only the readers
 * they satisfy (a full read's worth); the others wake once the network chunks that arrived together were all
 * taken (setImmediate), so a fast source does not wake every reader for every 64 KiB chunk, and a slow one
 * delays no byte. Any other change (the end, a failure, the verification, bytes on disk) wakes them all.
 */
export class ProgressSignal {
  #version = 0
  #waiters: Array<{ readonly resolve: () => void, readonly until: number }> = []
  #flush: NodeJS.Immediate | undefined

  get version (): number { return this.#version }

  /** Any change: every waiter wakes. */
  changed (): void {
    this.#version++
    this.#wakeAll()
  }

  /** Bytes arrived, `received` in all: the waiters that asked for no more than that wake. */
  progressed (received: number): void {
    this.#version++
    if (this.#waiters.length === 0) return
    const waiters = this.#waiters
    this.#waiters = waiters.filter((w) => w.until > received)
    for (const w of waiters) if (w.until <= received) w.resolve()
    if (this.#waiters.length > 0) this.#flush ??= setImmediate(() => { this.#wakeAll() })
  }

  #wakeAll (): void {
    if (this.#flush !== undefined) clearImmediate(this.#flush)
    this.#flush = undefined
    const waiters = this.#waiters
    this.#waiters = []
    for (const w of waiters) w.resolve()
  }

  /** Settles at the next change after `since` (at once if there was one), or once `until` bytes were received. */
  async after (since: number, until: number): Promise<void> {
    if (this.#version !== since) return
    await new Promise<void>((resolve) => this.#waiters.push({ resolve, until }))
  }
}
