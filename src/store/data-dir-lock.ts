import { randomBytes } from 'node:crypto'
import { link, mkdir, open, readFile, readlink, stat, unlink, type FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { DataDirLockedError } from './errors.js'
import { readProcStat, type ProcStat } from './proc-stat.js'

export interface DataDirLock {
  /** Stops the heartbeat and removes the lock file if it is still ours; idempotent. */
  release (): Promise<void>
}

export interface LockDataDirOptions {
  /**
   * How often the holder touches the lock file, for starters in another pid namespace (another container on the
   * same hostPath), which cannot look its pid up: to them a lock untouched for 3 heartbeats is stale. Default 5 s.
   */
  heartbeatMs?: number
}

const DEFAULTS = { heartbeatMs: 5000 }
const STALE_AFTER_HEARTBEATS = 3
/** The takeover guard is held for a few milliseconds; one this old was left by a starter that died holding it. */
const GUARD_ABANDONED_MS = 10_000
const GUARD_POLL_MS = 20

/** What a holder writes in the lock file: enough for another starter to tell whether that process still runs. */
interface LockRecord {
  readonly pid: number
  /** Field 22 of /proc/<pid>/stat: a reused pid (after a reboot or a wrap) has another start time. */
  readonly startTime: number
  /** /proc/sys/kernel/random/boot_id: after a reboot no holder of a lock file survives. */
  readonly bootId: string
  /** readlink /proc/self/ns/pid: a pid means something only in the namespace it was written in. */
  readonly pidNs: string
  readonly heartbeatMs: number
}

/** The lock file as a starter found it. */
interface SeenLock {
  readonly text: string
  readonly ino: number
  readonly mtimeMs: number
}

/** Whether a process with this pid exists (EPERM: it does, and belongs to someone else). */
export function isAlive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/**
 * Takes `<dir>/flotilla.lock` for this process. Node has no flock, so the lock file names its holder precisely
 * (pid, start time, boot, pid namespace) and a starter takes over any lock whose holder provably no longer runs:
 * dead, a zombie (killed, not reaped yet), a pid reused by another process, a previous boot, or (from another pid
 * namespace) not touched for 3 heartbeats. A lock held by a running flotilla is refused with DataDirLockedError.
 */
export async function lockDataDir (dir: string, options: LockDataDirOptions = {}): Promise<DataDirLock> {
  const heartbeatMs = options.heartbeatMs ?? DEFAULTS.heartbeatMs
  if (!Number.isSafeInteger(heartbeatMs) || heartbeatMs <= 0) throw new TypeError(`lockDataDir: heartbeatMs must be a positive integer, got ${heartbeatMs}`)
  await mkdir(dir, { recursive: true })
  const file = join(dir, 'flotilla.lock')
  const self = await ownRecord(heartbeatMs)
  // The record is written in full before link() makes it the lock: nobody reads a half-written lock as stale.
  const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`
  const fh = await open(tmp, 'wx')
  try {
    await fh.writeFile(JSON.stringify(self))
    await takeLock(tmp, file, self, dir)
  } catch (err) {
    await fh.close()
    throw err
  } finally {
    await unlink(tmp).catch(() => {})
  }
  return holdLock(fh, file, heartbeatMs)
}

async function takeLock (tmp: string, file: string, self: LockRecord, dir: string): Promise<void> {
  const deadline = Date.now() + 2 * GUARD_ABANDONED_MS
  for (;;) {
    try {
      await link(tmp, file)
      return
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    }
    const seen = await readLock(file)
    if (seen === undefined) continue
    const holder = await runningHolder(seen, self)
    if (holder !== undefined) throw new DataDirLockedError(dir, holder)
    if (await removeStale(file, seen)) continue
    if (Date.now() > deadline) throw new Error(`could not take the lock ${file}: ${file}.takeover stays in place`)
    await sleep(GUARD_POLL_MS)
  }
}

/** Touches the lock file's inode every heartbeat (for starters in other pid namespaces) until released. */
function holdLock (fh: FileHandle, file: string, heartbeatMs: number): DataDirLock {
  const timer = setInterval(() => {
    const now = new Date()
    fh.utimes(now, now).catch(() => {})
  }, heartbeatMs)
  timer.unref()
  let released: Promise<void> | undefined
  return {
    release: () => {
      released ??= (async () => {
        clearInterval(timer)
        try {
          // Only our own lock is removed: one taken over by another starter (we looked stale to it) stays.
          const [mine, there] = await Promise.all([fh.stat(), stat(file).catch(() => undefined)])
          if (there !== undefined && there.ino === mine.ino && there.dev === mine.dev) await unlink(file).catch(() => {})
        } finally {
          await fh.close()
        }
      })()
      return released
    },
  }
}

async function ownRecord (heartbeatMs: number): Promise<LockRecord> {
  const [own, bootId, pidNs] = await Promise.all([
    readProcStat('self'),
    readFile('/proc/sys/kernel/random/boot_id', 'utf8'),
    readlink('/proc/self/ns/pid'),
  ])
  if (own === undefined) throw new Error('cannot read /proc/self/stat: the data-dir lock needs Linux /proc')
  return { pid: process.pid, startTime: own.startTime, bootId: bootId.trim(), pidNs, heartbeatMs }
}

async function readLock (file: string): Promise<SeenLock | undefined> {
  try {
    const [text, st] = await Promise.all([readFile(file, 'utf8'), stat(file)])
    return { text, ino: st.ino, mtimeMs: st.mtimeMs }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
}

/** A lock file's content: a record, the bare pid an older flotilla wrote, or undefined for anything else. */
function parseLock (text: string): LockRecord | number | undefined {
  if (/^\s*\d+\s*$/.test(text)) return Number(text)
  let doc: Partial<Record<keyof LockRecord, unknown>>
  try {
    doc = JSON.parse(text) as typeof doc
  } catch {
    return undefined
  }
  if (typeof doc !== 'object' || doc === null) return undefined
  const { pid, startTime, bootId, pidNs, heartbeatMs } = doc
  if (typeof pid !== 'number' || !Number.isSafeInteger(pid) || pid <= 0 || typeof startTime !== 'number' ||
    typeof bootId !== 'string' || typeof pidNs !== 'string') return undefined
  return {
    pid, startTime, bootId, pidNs,
    heartbeatMs: typeof heartbeatMs === 'number' && heartbeatMs > 0 ? heartbeatMs : DEFAULTS.heartbeatMs,
  }
}

const isRunning = (st: ProcStat): boolean => st.state !== 'Z' && st.state !== 'X'

/** The pid of the lock's holder if that holder still runs; undefined for a stale lock. */
async function runningHolder (seen: SeenLock, self: LockRecord): Promise<number | undefined> {
  const holder = parseLock(seen.text)
  if (holder === undefined) return undefined
  if (typeof holder === 'number') {
    // An older flotilla wrote only its pid: any running process with it may be that flotilla, but not we
    // ourselves (a restarted container gets the same pid) and not a zombie.
    if (holder === self.pid || holder <= 0 || !Number.isSafeInteger(holder)) return undefined
    const st = await readProcStat(holder)
    return st !== undefined && isRunning(st) ? holder : undefined
  }
  if (holder.bootId !== self.bootId) return undefined
  if (holder.pidNs !== self.pidNs) {
    return Date.now() - seen.mtimeMs < STALE_AFTER_HEARTBEATS * holder.heartbeatMs ? holder.pid : undefined
  }
  const st = await readProcStat(holder.pid)
  // No stat, yet the pid exists: /proc hides it from us (hidepid); the holder cannot be disproved.
  if (st === undefined) return isAlive(holder.pid) ? holder.pid : undefined
  return isRunning(st) && st.startTime === holder.startTime ? holder.pid : undefined
}

/**
 * Removes the lock file if it is still the stale one that was read. Two starters may both find it stale; the
 * takeover guard, created exclusively, lets one at a time check and remove it, so the second finds the first's
 * fresh lock in place instead of removing it. False when another starter holds the guard (try again shortly).
 */
async function removeStale (file: string, seen: SeenLock): Promise<boolean> {
  const guard = `${file}.takeover`
  try {
    await (await open(guard, 'wx')).close()
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    // A starter died holding the guard. Removing it is not atomic with the check; this only matters if a
    // starter dies within those few milliseconds and two others then start at the same moment.
    const age = await stat(guard).then((st) => Date.now() - st.mtimeMs, () => 0)
    if (age > GUARD_ABANDONED_MS) await unlink(guard).catch(() => {})
    return false
  }
  try {
    const now = await readLock(file)
    if (now !== undefined && now.ino === seen.ino && now.text === seen.text) await unlink(file).catch(() => {})
    return true
  } finally {
    await unlink(guard).catch(() => {})
  }
}
