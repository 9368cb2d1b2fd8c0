import { setTimeout as sleep } from 'node:timers/promises'

export interface WaitForOptions {
  /** Give up after this long (wall clock, including the time spent inside `fn`). */
  timeoutMs: number
  /** Pause between two polls; default 50 ms. */
  intervalMs?: number
  /** What is being waited for, for the error message ("registry at 127.0.0.1:5000 to answer /v2/"). */
  what: string
  /** Abort the wait early (the error then carries the abort reason as cause). */
  signal?: AbortSignal
}

export class WaitForTimeoutError extends Error {
  readonly code = 'ERR_WAIT_TIMEOUT'
  constructor (message: string, options?: ErrorOptions) {
    super(message, options)
    this.name = 'WaitForTimeoutError'
  }
}

const pending = Symbol('pending')

/**
 * Polls `fn` until it returns true. A throwing `fn` counts as "not yet" and its last error is kept
 * for the timeout message. A single slow poll cannot overrun the deadline: it is raced against it.
 */
export async function waitFor (fn: () => Promise<boolean> | boolean, options: WaitForOptions): Promise<void> {
  const { timeoutMs, intervalMs = 50, what, signal } = options
  if (!(timeoutMs > 0)) throw new TypeError(`waitFor: timeoutMs must be > 0, got ${timeoutMs}`)
  if (!(intervalMs >= 0)) throw new TypeError(`waitFor: intervalMs must be >= 0, got ${intervalMs}`)
  const started = Date.now()
  const deadline = started + timeoutMs
  let lastError: unknown
  let polls = 0
  for (;;) {
    if (signal?.aborted) throw new Error(`waitFor: aborted while waiting for ${what}`, { cause: signal.reason })
    const remaining = deadline - Date.now()
    if (remaining <= 0) break
    polls++
    const guard = new AbortController()
    try {
      const result = await Promise.race([
        Promise.resolve().then(fn),
        sleep(remaining, pending, { signal: guard.signal }),
      ])
      if (result === true) return
    } catch (err) {
      lastError = err
    } finally {
      guard.abort()
    }
    const pause = Math.min(intervalMs, deadline - Date.now())
    if (pause > 0) await sleep(pause, undefined, { signal }).catch(() => undefined)
  }
  const detail = lastError === undefined ? '' : `; last error: ${lastError instanceof Error ? lastError.message : String(lastError)}`
  throw new WaitForTimeoutError(
    `timed out after ${Date.now() - started} ms (${polls} polls) waiting for ${what}${detail}`,
    lastError === undefined ? undefined : { cause: lastError },
  )
}
