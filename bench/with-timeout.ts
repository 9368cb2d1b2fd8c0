export class PhaseTimeoutError extends Error {
  readonly code = 'ERR_PHASE_TIMEOUT'
  constructor (readonly phase: string, readonly timeoutMs: number) {
    super(`phase "${phase}" did not finish within ${Math.round(timeoutMs / 1000)} s`)
    this.name = 'PhaseTimeoutError'
  }
}

/**
 * Runs `fn` with a deadline. At the deadline the signal handed to `fn` aborts (downloads and load
 * generators stop), `fn` gets up to `graceMs` to settle (so its own cleanup runs), and the returned
 * promise rejects with PhaseTimeoutError whatever `fn` is still doing.
 */
export async function withTimeout<T> (phase: string, timeoutMs: number, fn: (signal: AbortSignal) => Promise<T>, graceMs = 15_000): Promise<T> {
  if (!(timeoutMs > 0)) throw new TypeError(`withTimeout: timeoutMs must be > 0, got ${timeoutMs}`)
  const controller = new AbortController()
  const work = fn(controller.signal)
  work.catch(() => { /* reported through the race below, or superseded by the timeout */ })
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => {
      const err = new PhaseTimeoutError(phase, timeoutMs)
      controller.abort(err)
      let graceTimer: NodeJS.Timeout | undefined
      const grace = new Promise<void>((resolve) => { graceTimer = setTimeout(resolve, graceMs) })
      void Promise.race([work.then(() => undefined, () => undefined), grace]).then(() => {
        clearTimeout(graceTimer)
        reject(err)
      })
    }, timeoutMs)
  })
  try {
    return await Promise.race([work, deadline])
  } finally {
    clearTimeout(timer)
  }
}
