import { readFile } from 'node:fs/promises'

/** Resident set size of a process in bytes (VmRSS of /proc/<pid>/status); undefined once it is gone. */
export async function readRss (pid: number): Promise<number | undefined> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8')
    const kb = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status)?.[1]
    return kb === undefined ? undefined : Number(kb) * 1024
  } catch {
    return undefined
  }
}

/** Samples the RSS of every watched process at a fixed interval and keeps the peak, overall and per phase. */
export class RssSampler {
  readonly #pids = new Set<number>()
  readonly #peakByPhase = new Map<string, number>()
  #phase = 'setup'
  #peak = 0
  #timer: NodeJS.Timeout | undefined
  #isSampling = false

  constructor (readonly intervalMs = 100) {}

  watch (pid: number): void { if (pid > 0) this.#pids.add(pid) }
  unwatch (pid: number): void { this.#pids.delete(pid) }

  /** Samples taken from now on count toward `phase`. */
  set phase (phase: string) { this.#phase = phase }

  get peak (): number { return this.#peak }
  get peakByPhase (): ReadonlyMap<string, number> { return this.#peakByPhase }

  start (): void {
    this.#timer ??= setInterval(() => { void this.sample() }, this.intervalMs)
    this.#timer.unref()
  }

  stop (): void {
    clearInterval(this.#timer)
    this.#timer = undefined
  }

  async sample (): Promise<void> {
    if (this.#isSampling) return // a slow /proc read must not pile up
    this.#isSampling = true
    try {
      const phase = this.#phase
      for (const pid of this.#pids) {
        const rss = await readRss(pid)
        if (rss === undefined) continue
        this.#peak = Math.max(this.#peak, rss)
        this.#peakByPhase.set(phase, Math.max(this.#peakByPhase.get(phase) ?? 0, rss))
      }
    } finally {
      this.#isSampling = false
    }
  }
}
