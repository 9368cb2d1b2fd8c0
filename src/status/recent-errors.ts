import type { Logger } from 'pino'

export interface RecentError {
  readonly at: string
  readonly message: string
}

const DEFAULT_LIMIT = 20

/** The last errors a node answered or logged, newest first, bounded: what the status page lists. */
export class RecentErrors {
  readonly #limit: number
  readonly #now: () => number
  #entries: RecentError[] = []

  constructor (options: { readonly limit?: number, readonly now?: () => number } = {}) {
    const limit = options.limit ?? DEFAULT_LIMIT
    if (!Number.isSafeInteger(limit) || limit < 1) throw new TypeError(`RecentErrors: limit must be a positive integer, got ${String(limit)}`)
    this.#limit = limit
    this.#now = options.now ?? Date.now
  }

  record (message: string): void {
    this.#entries = [{ at: new Date(this.#now()).toISOString(), message }, ...this.#entries].slice(0, this.#limit)
  }

  list (): readonly RecentError[] {
    return this.#entries
  }

  /**
   * A logger whose warnings and errors are also recorded here (`request failed: ERR_… message`): the edge's
   * one error path (sendError) logs every 5xx and unexpected error through the logger it is given.
   */
  tap (logger: Logger): Logger {
    const tapped = logger.child({})
    for (const level of ['warn', 'error'] as const) {
      const log = tapped[level].bind(tapped)
      tapped[level] = ((first: unknown, ...rest: unknown[]) => {
        this.record(describeLog(first, rest))
        return (log as (...args: unknown[]) => void)(first, ...rest)
      }) as Logger['warn']
    }
    return tapped
  }
}

/** `msg: code err` from pino's (obj, msg) or (msg) call forms. */
function describeLog (first: unknown, rest: readonly unknown[]): string {
  if (typeof first === 'string') return first
  const msg = typeof rest[0] === 'string' ? rest[0] : ''
  const obj = (typeof first === 'object' && first !== null ? first : {}) as { code?: unknown, err?: unknown }
  const err = obj.err instanceof Error ? obj.err.message : typeof obj.err === 'string' ? obj.err : ''
  const code = typeof obj.code === 'string' ? obj.code : ''
  return [msg, [code, err].filter((t) => t !== '').join(' ')].filter((t) => t !== '').join(': ')
}
