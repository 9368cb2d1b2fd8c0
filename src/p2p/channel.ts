/**
 * An unbounded single-consumer async queue: producers `push`, the consumer iterates until `end`.
 * Used to yield providers as their lookups finish, in completion order.
 */
export class Channel<T> implements AsyncIterable<T> {
  readonly #items: T[] = []
  #wake: (() => void) | undefined
  #ended = false

  push (item: T): void {
    if (this.#ended) return
    this.#items.push(item)
    this.#notify()
  }

  end (): void {
    this.#ended = true
    this.#notify()
  }

  async * [Symbol.asyncIterator] (): AsyncIterator<T> {
    while (true) {
      const item = this.#items.shift()
      if (item !== undefined) {
        yield item
        continue
      }
      if (this.#ended) return
      await new Promise<void>(resolve => { this.#wake = resolve })
    }
  }

  #notify (): void {
    const wake = this.#wake
    this.#wake = undefined
    wake?.()
  }
}

/**
 * An AbortSignal that aborts when any of `signals` does (or after `timeoutMs`), with `dispose()` to
 * detach from long-lived parents. Unlike `AbortSignal.any`, nothing stays registered on the parents.
 */
export interface LinkedSignal {
  readonly signal: AbortSignal
  /** Aborts this signal only (not the parents), then detaches. */
  abort (reason?: unknown): void
  /** Detaches from the parents and clears the timer. */
  dispose (): void
}

export function linkSignals (signals: ReadonlyArray<AbortSignal | undefined>, timeoutMs?: number): LinkedSignal {
  const controller = new AbortController()
  const cleanups: Array<() => void> = []
  const dispose = (): void => { for (const cleanup of cleanups.splice(0)) cleanup() }
  const abort = (reason?: unknown): void => { controller.abort(reason); dispose() }
  for (const parent of signals) {
    if (parent === undefined) continue
    if (parent.aborted) {
      controller.abort(parent.reason)
      return { signal: controller.signal, abort, dispose }
    }
    const onAbort = (): void => { controller.abort(parent.reason); dispose() }
    parent.addEventListener('abort', onAbort, { once: true })
    cleanups.push(() => parent.removeEventListener('abort', onAbort))
  }
  if (timeoutMs !== undefined) {
    const timer = setTimeout(() => {
      controller.abort(new DOMException(`timed out after ${timeoutMs} ms`, 'TimeoutError'))
      dispose()
    }, timeoutMs)
    timer.unref()
    cleanups.push(() => clearTimeout(timer))
  }
  return { signal: controller.signal, abort, dispose }
}
