export type CircuitState = 'closed' | 'open' | 'half-open'

export interface CircuitBreakerOptions {
  /** Consecutive failures that open the circuit. */
  readonly failureThreshold?: number
  /** How long the circuit stays open before one trial request is let through. */
  readonly openMs?: number
  readonly now?: () => number
  readonly onStateChange?: (from: CircuitState, to: CircuitState) => void
}

const DEFAULTS = { failureThreshold: 5, openMs: 10_000 } as const

/**
 * closed → open after `failureThreshold` consecutive failures → half-open once `openMs` has passed, where a
 * single trial is admitted → closed on its success, open again on its failure. Callers ask `tryAcquire()`
 * before each attempt and report the outcome with exactly one of recordSuccess/recordFailure/release.
 */
export class CircuitBreaker {
  readonly #failureThreshold: number
  readonly #openMs: number
  readonly #now: () => number
  readonly #onStateChange: ((from: CircuitState, to: CircuitState) => void) | undefined
  #state: CircuitState = 'closed'
  #failures = 0
  #openedAt = 0
  #isTrialInFlight = false
  #lastFailure: { readonly message: string, readonly at: number } | undefined

  constructor (options: CircuitBreakerOptions = {}) {
    const failureThreshold = options.failureThreshold ?? DEFAULTS.failureThreshold
    const openMs = options.openMs ?? DEFAULTS.openMs
    if (!Number.isSafeInteger(failureThreshold) || failureThreshold < 1) {
      throw new TypeError(`failureThreshold must be a positive integer, got ${String(failureThreshold)}`)
    }
    if (!Number.isFinite(openMs) || openMs < 0) throw new TypeError(`openMs must be a non-negative number, got ${String(openMs)}`)
    this.#failureThreshold = failureThreshold
    this.#openMs = openMs
    this.#now = options.now ?? Date.now
    this.#onStateChange = options.onStateChange
  }

  get state (): CircuitState {
    if (this.#state === 'open' && this.#now() - this.#openedAt >= this.#openMs) this.#transition('half-open')
    return this.#state
  }

  /** The last failure recorded with its error (message, when): for the status page. */
  get lastFailure (): { readonly message: string, readonly at: number } | undefined { return this.#lastFailure }

  /** Whether an attempt may go out now; in half-open only the first caller gets through. */
  tryAcquire (): boolean {
    const state = this.state
    if (state === 'closed') return true
    if (state === 'open' || this.#isTrialInFlight) return false
    this.#isTrialInFlight = true
    return true
  }

  /** The upstream answered (even with a 404): it is reachable. */
  recordSuccess (): void {
    this.#failures = 0
    this.#isTrialInFlight = false
    if (this.#state !== 'closed') this.#transition('closed')
  }

  recordFailure (error?: Error): void {
    if (error !== undefined) this.#lastFailure = { message: error.message, at: this.#now() }
    this.#failures++
    const wasTrial = this.#isTrialInFlight
    this.#isTrialInFlight = false
    // Failures of attempts started before the circuit opened must not push the reopening further out.
    if (this.#state === 'open') return
    if (wasTrial || this.#state === 'half-open' || this.#failures >= this.#failureThreshold) {
      this.#openedAt = this.#now()
      this.#transition('open')
    }
  }

  /** The attempt ended without saying anything about the upstream's health (the caller aborted). */
  release (): void {
    this.#isTrialInFlight = false
  }

  #transition (to: CircuitState): void {
    const from = this.#state
    if (from === to) return
    this.#state = to
    this.#onStateChange?.(from, to)
  }
}
