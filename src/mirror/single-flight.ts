/** Coalesces concurrent calls with the same key into one promise. */
export class SingleFlight<T> {
  readonly #inflight = new Map<string, Promise<T>>()

  do (key: string, fn: () => Promise<T>): Promise<T> {
    const existing = this.#inflight.get(key)
    if (existing !== undefined) return existing
    const p = fn().finally(() => { this.#inflight.delete(key) })
    this.#inflight.set(key, p)
    return p
  }

  get size (): number {
    return this.#inflight.size
  }
}
