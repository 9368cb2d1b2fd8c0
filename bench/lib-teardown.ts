// Bounded runs: teardown steps that always run (each with its own time limit) and a deadline for the
// whole run after which the process exits; the test helpers' exit hooks then kill children, delete
// network namespaces and remove temp dirs synchronously.

export type Log = (message: string) => void

/** Async teardown steps run newest first, each bounded; failures are logged, not thrown. */
export class Teardown {
  readonly #steps: Array<{ what: string, fn: () => Promise<unknown> }> = []

  constructor (private readonly log: Log, private readonly stepTimeoutMs = 30_000) {}

  add (what: string, fn: () => Promise<unknown>): void {
    this.#steps.push({ what, fn })
  }

  async run (): Promise<void> {
    for (let step = this.#steps.pop(); step !== undefined; step = this.#steps.pop()) {
      let timer: NodeJS.Timeout | undefined
      const bound = new Promise<never>((_resolve, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${this.stepTimeoutMs} ms`)), this.stepTimeoutMs)
      })
      try {
        await Promise.race([step.fn(), bound])
      } catch (err) {
        this.log(`teardown: ${step.what} failed: ${(err as Error).message}`)
      } finally {
        clearTimeout(timer)
      }
    }
  }
}

/**
 * Runs `main` with `teardown` afterwards whatever happens, and exits the process (code 2) if the whole
 * thing is not over after `deadlineMs`. Sets the exit code: 0, or 1 when `main` threw.
 */
export async function runBounded (log: Log, deadlineMs: number, main: (teardown: Teardown) => Promise<void>): Promise<void> {
  const teardown = new Teardown(log)
  const watchdog = setTimeout(() => {
    log(`run deadline of ${Math.round(deadlineMs / 1000)} s passed: exiting (exit hooks clean up)`)
    process.exit(2)
  }, deadlineMs)
  try {
    await main(teardown)
  } catch (err) {
    log(`failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`)
    process.exitCode = 1
  } finally {
    await teardown.run()
    clearTimeout(watchdog)
  }
}
