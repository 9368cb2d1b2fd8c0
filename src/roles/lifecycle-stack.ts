import type { Logger } from 'pino'

/** Something started that has to be stopped: a listener, a connection pool, a lock. */
export interface Closable {
  close (): Promise<void> | void
}

/**
 * What a role (or a builder) has started, stopped in reverse order: on shutdown, or at once when a later
 * start fails, so a bad option never leaves a listener or the data directory lock behind. A failed stop is
 * logged and the rest are still stopped.
 */
export class LifecycleStack {
  readonly #logger: Logger
  readonly #stops: Array<() => Promise<void> | void> = []
  #closing: Promise<void> | undefined

  constructor (logger: Logger) {
    this.#logger = logger
  }

  /**
   * Runs `build` on a new stack. If it throws, what it had started is stopped before the error goes on;
   * otherwise what it returns owns the stack (its close calls the stack's).
   */
  static async start<T> (logger: Logger, build: (stack: LifecycleStack) => Promise<T>): Promise<T> {
    const stack = new LifecycleStack(logger)
    try {
      return await build(stack)
    } catch (err) {
      await stack.close()
      throw err
    }
  }

  /** Takes what was just started, to be closed in its turn; returns it. */
  use<T extends Closable> (started: T): T {
    this.#stops.push(async () => { await started.close() })
    return started
  }

  /** Runs `stop` in its turn, for what is stopped by something other than a close (a lock's release). */
  defer (stop: () => Promise<void> | void): void {
    this.#stops.push(stop)
  }

  /** Stops everything, last started first; idempotent. */
  async close (): Promise<void> {
    this.#closing ??= (async () => {
      for (const stop of this.#stops.splice(0).reverse()) {
        try {
          await stop()
        } catch (err) {
          this.#logger.warn({ err }, 'cleanup failed')
        }
      }
    })()
    await this.#closing
  }
}
