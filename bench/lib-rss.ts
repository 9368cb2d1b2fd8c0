// Resident set size of agent processes, read from /proc (the agents are our children, same pid namespace).
import { readFile } from 'node:fs/promises'
import { readRss } from './rss-sampler.js'

export { readRss }

/** The largest VmRSS of any of `pids` right now (0 when none is left). */
export async function maxRss (pids: readonly number[]): Promise<number> {
  const values = await Promise.all(pids.map(readRss))
  return Math.max(0, ...values.map((v) => v ?? 0))
}

/** Samples the RSS of a set of processes at a fixed interval and keeps the largest seen. */
export class RssPeak {
  #peak = 0
  #timer: NodeJS.Timeout | undefined
  #isSampling = false

  constructor (private readonly pids: readonly number[], private readonly intervalMs = 100) {}

  get peak (): number { return this.#peak }

  start (): this {
    this.#timer ??= setInterval(() => { void this.sample() }, this.intervalMs)
    return this
  }

  /** Stops sampling after one last sample; returns the peak. */
  async stop (): Promise<number> {
    clearInterval(this.#timer)
    this.#timer = undefined
    await this.sample()
    return this.#peak
  }

  private async sample (): Promise<void> {
    if (this.#isSampling) return // a slow /proc read must not pile up
    this.#isSampling = true
    try {
      this.#peak = Math.max(this.#peak, await maxRss(this.pids))
    } finally {
      this.#isSampling = false
    }
  }
}

/** USER_HZ: /proc/<pid>/stat counts CPU time in 1/100 s on every Linux (the kernel ABI fixes it). */
const CLOCK_TICKS = 100

/** CPU time (user + system) a process has used so far, in seconds; undefined once it is gone. */
export async function readCpuSeconds (pid: number): Promise<number | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8')
    // "pid (comm) state ppid …": comm may hold spaces, so count fields after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    const utime = Number(fields[11])
    const stime = Number(fields[12])
    return (utime + stime) / CLOCK_TICKS
  } catch {
    return undefined
  }
}

/** VmHWM (peak resident set since the process started) of a live process, in bytes. */
export async function readPeakRss (pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  const m = /^VmHWM:\s+(\d+) kB$/m.exec(status)
  if (m?.[1] === undefined) throw new Error(`/proc/${pid}/status has no VmHWM`)
  return Number(m[1]) * 1024
}

/** CPU seconds of a process that must still be there. */
export async function cpuOf (pid: number): Promise<number> {
  const s = await readCpuSeconds(pid)
  if (s === undefined) throw new Error(`process ${pid} is gone`)
  return s
}
