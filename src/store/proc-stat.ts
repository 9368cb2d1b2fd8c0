import { readFile } from 'node:fs/promises'

/** What the data-dir lock needs from `/proc/<pid>/stat` (proc(5)). */
export interface ProcStat {
  readonly pid: number
  /** One letter: R, S, D, T, t, Z (zombie: exited, not reaped yet), X (dead), ... */
  readonly state: string
  /** Field 22: when the process started, in clock ticks after boot. With the pid, it names one process of a boot. */
  readonly startTime: number
}

/**
 * Parses one `/proc/<pid>/stat` line. Field 2 (`comm`, in parentheses) may itself hold spaces and `)`, so the
 * fields after it are counted from the last `)`. Returns undefined for a line that is not one.
 */
export function parseProcStat (line: string): ProcStat | undefined {
  const open = line.indexOf(' (')
  const close = line.lastIndexOf(')')
  if (open <= 0 || close < open) return undefined
  const pid = Number(line.slice(0, open))
  // fields[0] is field 3 (state), so field 22 (starttime) is fields[19].
  const fields = line.slice(close + 1).trim().split(/\s+/)
  const state = fields[0] ?? ''
  const startTime = Number(fields[19])
  if (!Number.isSafeInteger(pid) || pid <= 0 || !/^[A-Za-z]$/.test(state) || !Number.isSafeInteger(startTime) || startTime < 0) return undefined
  return { pid, state, startTime }
}

/** The stat of a process of the pid namespace /proc belongs to; undefined when there is no such process. */
export async function readProcStat (pid: number | 'self'): Promise<ProcStat | undefined> {
  let line: string
  try {
    line = await readFile(`/proc/${pid}/stat`, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ESRCH') return undefined
    throw err
  }
  return parseProcStat(line)
}
