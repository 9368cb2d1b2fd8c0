import assert from 'node:assert/strict'
import { readdir, readFile, readlink, stat, utimes, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { lockDataDir } from '../../../src/store/data-dir-lock.js'
import { DataDirLockedError } from '../../../src/store/errors.js'
import { readProcStat } from '../../../src/store/proc-stat.js'
import { startProcess, type ProcessHandle } from '../../helpers/child-process.js'
import { makeTempDir, type TempDir } from '../../helpers/temp-dir.js'
import { waitFor } from '../../helpers/wait-for.js'

const LOCK_MODULE = new URL('../../../src/store/data-dir-lock.ts', import.meta.url).href

/** A process that stays alive until stopped: a live process that holds no lock. */
let other: ProcessHandle
/** The pid of a process that has exited (and been reaped): a lock left behind by kill -9. */
let deadPid: number
/** A `sleep` whose child has exited and is never reaped: `zombiePid` stays a zombie while `zombieParent` runs. */
let zombieParent: ProcessHandle
let zombiePid: number
let tmp: TempDir
/** Every process a test starts, stopped in `after` even when the test fails. */
const started: ProcessHandle[] = []
let bootId: string
let pidNs: string

before(async () => {
  tmp = await makeTempDir('data-dir-lock')
  other = await startProcess('sleep', ['1000000'], { name: 'not-a-holder' })
  started.push(other)
  const gone = await startProcess(process.execPath, ['-e', ''], { name: 'gone' })
  deadPid = gone.pid
  assert.equal((await gone.exited).code, 0)
  // The child exits only once its parent has become `sleep`: a shell could still reap it, sleep never does.
  const script = '(until read c < /proc/$$/comm && [ "$c" = sleep ]; do :; done) & echo "zombie $!"; exec sleep 1000000'
  zombieParent = await startProcess('sh', ['-c', script], { name: 'zombie-parent' })
  started.push(zombieParent)
  await waitFor(() => /zombie \d+\n/.test(zombieParent.output()), { timeoutMs: 10_000, what: 'the zombie\'s pid' })
  zombiePid = Number(/zombie (\d+)/.exec(zombieParent.output())?.[1])
  await waitFor(async () => (await readProcStat(zombiePid))?.state === 'Z', { timeoutMs: 10_000, what: `pid ${zombiePid} to be a zombie` })
  bootId = (await readFile('/proc/sys/kernel/random/boot_id', 'utf8')).trim()
  pidNs = await readlink('/proc/self/ns/pid')
})
after(async () => {
  await Promise.all(started.map(async (p) => await p.stop('SIGKILL', 0)))
  await tmp.cleanup()
})

let n = 0
const freshDir = (): string => join(tmp.path, `data-${++n}`)
const lockFile = (dir: string): string => join(dir, 'flotilla.lock')
const lockRecord = async (dir: string): Promise<Record<string, unknown>> => JSON.parse(await readFile(lockFile(dir), 'utf8')) as Record<string, unknown>

/** The lock record a holder with this pid and start time would write (our boot and pid namespace unless given). */
function record (pid: number, startTime: number, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ pid, startTime, bootId, pidNs, heartbeatMs: 5000, ...extra })
}

async function startTime (pid: number): Promise<number> {
  const st = await readProcStat(pid)
  assert.ok(st !== undefined, `pid ${pid} runs`)
  return st.startTime
}

/**
 * A flotilla stand-in in its own process: takes the lock on `dir` (once `goFile` exists, if given), prints
 * `locked` or the error code, and holds the lock until stopped.
 */
async function startLocker (dir: string, goFile = ''): Promise<ProcessHandle> {
  const code = `
    const { existsSync } = await import('node:fs')
    const { lockDataDir } = await import(${JSON.stringify(LOCK_MODULE)})
    const [dir, go] = process.argv.slice(1)
    console.log('ready')
    while (go !== '' && !existsSync(go)) await new Promise((resolve) => setTimeout(resolve, 2))
    try {
      await lockDataDir(dir)
      console.log('locked')
    } catch (err) {
      console.log(err.code ?? err.message)
    }
    setInterval(() => {}, 1 << 30)
  `
  const p = await startProcess(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code, dir, goFile], { name: 'locker' })
  started.push(p)
  await waitFor(() => p.output().includes('ready') || !p.isRunning, { timeoutMs: 30_000, what: 'a locker process to start' })
  assert.ok(p.isRunning, p.output())
  return p
}

const outcome = (p: ProcessHandle): string | undefined => /^(locked|ERR_\w+)$/m.exec(p.output())?.[1]

describe('lockDataDir', () => {
  test('creates the directory and writes who holds it; release removes the lock', async () => {
    const dir = freshDir()
    const lock = await lockDataDir(dir)
    assert.deepEqual(await lockRecord(dir), { pid: process.pid, startTime: await startTime(process.pid), bootId, pidNs, heartbeatMs: 5000 })
    await lock.release()
    assert.deepEqual(await readdir(dir), [])
    await lock.release()
    const again = await lockDataDir(dir)
    await again.release()
  })

  test('a second lock by the same process is refused', async () => {
    const dir = freshDir()
    const lock = await lockDataDir(dir)
    await assert.rejects(lockDataDir(dir), DataDirLockedError)
    await lock.release()
  })

  test('defect 7: a lock held by a live flotilla in another process is refused with DataDirLockedError', async () => {
    const dir = freshDir()
    const holder = await startLocker(dir)
    await waitFor(() => outcome(holder) !== undefined, { timeoutMs: 30_000, what: 'the holder to take the lock' })
    assert.equal(outcome(holder), 'locked', holder.output())
    const held = await readFile(lockFile(dir), 'utf8')
    await assert.rejects(lockDataDir(dir), (err: unknown) => {
      assert.ok(err instanceof DataDirLockedError)
      assert.equal(err.code, 'ERR_DATA_DIR_LOCKED')
      assert.equal(err.pid, holder.pid)
      assert.equal(err.dir, dir)
      assert.match(err.message, new RegExp(`pid ${holder.pid}`))
      return true
    })
    assert.equal(await readFile(lockFile(dir), 'utf8'), held, 'the holder keeps its lock')
    await holder.stop('SIGKILL', 0)
    const lock = await lockDataDir(dir)
    await lock.release()
  })

  test('a lock file of an older flotilla (a bare pid) naming a live process is refused', async () => {
    const dir = freshDir()
    await lockDataDir(dir).then(async (l) => { await l.release() })
    await writeFile(lockFile(dir), `${other.pid}\n`)
    await assert.rejects(lockDataDir(dir), (err: unknown) => err instanceof DataDirLockedError && err.pid === other.pid)
  })

  test('defect 7: a lock naming a live process that is not its holder (another start time) is taken over', async () => {
    const cases: Array<[string, () => Promise<string>]> = [
      ['a sleep', async () => record(other.pid, await startTime(other.pid) + 1)],
      ['our parent', async () => record(process.ppid, await startTime(process.ppid) + 1)],
      ['ourselves (a restarted container reuses pids)', async () => record(process.pid, await startTime(process.pid) - 1)],
    ]
    for (const [name, content] of cases) {
      const dir = freshDir()
      await lockDataDir(dir).then(async (l) => { await l.release() })
      await writeFile(lockFile(dir), await content())
      const lock = await lockDataDir(dir)
      assert.equal((await lockRecord(dir)).pid, process.pid, name)
      await lock.release()
    }
  })

  test('defect 7: a lock naming a zombie (killed, not reaped yet) is taken over, in either format', async () => {
    for (const content of [String(zombiePid), record(zombiePid, (await readProcStat(zombiePid))?.startTime ?? -1)]) {
      const dir = freshDir()
      await lockDataDir(dir).then(async (l) => { await l.release() })
      await writeFile(lockFile(dir), content)
      const lock = await lockDataDir(dir)
      assert.equal((await lockRecord(dir)).pid, process.pid, content)
      await lock.release()
    }
  })

  test('defect 7: a lock written before a reboot is taken over even if its pid and start time run now', async () => {
    const dir = freshDir()
    await lockDataDir(dir).then(async (l) => { await l.release() })
    await writeFile(lockFile(dir), record(other.pid, await startTime(other.pid), { bootId: '00000000-0000-0000-0000-000000000000' }))
    const lock = await lockDataDir(dir)
    await lock.release()
  })

  test('defect 7: from another pid namespace the heartbeat decides: touched recently is refused, 3 heartbeats old is taken over', async () => {
    const dir = freshDir()
    await lockDataDir(dir).then(async (l) => { await l.release() })
    // pid 1 runs in every namespace: the pid says nothing here.
    await writeFile(lockFile(dir), record(1, 1, { pidNs: 'pid:[1]', heartbeatMs: 1000 }))
    await assert.rejects(lockDataDir(dir), (err: unknown) => err instanceof DataDirLockedError && err.pid === 1)
    const old = new Date(Date.now() - 3500)
    await utimes(lockFile(dir), old, old)
    const lock = await lockDataDir(dir)
    assert.equal((await lockRecord(dir)).pid, process.pid)
    await lock.release()
  })

  test('defect 7: the holder touches its lock every heartbeat, and stops when released', async () => {
    const dir = freshDir()
    const lock = await lockDataDir(dir, { heartbeatMs: 20 })
    const old = new Date(Date.now() - 60_000)
    await utimes(lockFile(dir), old, old)
    await waitFor(async () => Date.now() - (await stat(lockFile(dir))).mtimeMs < 10_000, { timeoutMs: 5000, what: 'a heartbeat' })
    await lock.release()
    await assert.rejects(stat(lockFile(dir)), { code: 'ENOENT' })
  })

  test('defect 7: two starters in one process at once on a stale lock: exactly one wins', async () => {
    const dir = freshDir()
    await lockDataDir(dir).then(async (l) => { await l.release() })
    await writeFile(lockFile(dir), String(deadPid))
    const results = await Promise.allSettled(Array.from({ length: 8 }, async () => await lockDataDir(dir)))
    const won = results.filter((r) => r.status === 'fulfilled')
    assert.equal(won.length, 1, JSON.stringify(results.map((r) => r.status === 'rejected' ? String(r.reason) : 'locked')))
    for (const r of results) if (r.status === 'rejected') assert.ok(r.reason instanceof DataDirLockedError, String(r.reason))
    await won[0]?.value.release()
    assert.deepEqual(await readdir(dir), [])
  })

  test('defect 7: four starting processes at once on a stale lock: exactly one wins', async () => {
    const dir = freshDir()
    const go = join(tmp.path, `go-${n}`)
    await lockDataDir(dir).then(async (l) => { await l.release() })
    await writeFile(lockFile(dir), String(deadPid))
    const lockers = await Promise.all(Array.from({ length: 4 }, async () => await startLocker(dir, go)))
    await writeFile(go, '')
    await waitFor(() => lockers.every((p) => outcome(p) !== undefined), { timeoutMs: 30_000, what: 'every starter to finish' })
    const outcomes = lockers.map(outcome)
    assert.equal(outcomes.filter((o) => o === 'locked').length, 1, JSON.stringify(outcomes))
    assert.equal(outcomes.filter((o) => o === 'ERR_DATA_DIR_LOCKED').length, 3, JSON.stringify(outcomes))
    const winner = lockers[outcomes.indexOf('locked')]
    assert.equal((await lockRecord(dir)).pid, winner?.pid)
  })

  const stale: Array<[string, () => string]> = [
    ['a dead pid (kill -9 left it behind)', () => String(deadPid)],
    ['our own pid (a restarted container reuses pids)', () => String(process.pid)],
    ['a record of a dead pid', () => record(deadPid, 1)],
    ['garbage', () => 'not a pid'],
    ['an empty file', () => ''],
    ['pid 0', () => '0'],
  ]
  for (const [name, content] of stale) {
    test(`a stale lock with ${name} is taken over`, async () => {
      const dir = freshDir()
      await lockDataDir(dir).then(async (l) => { await l.release() })
      await writeFile(lockFile(dir), content())
      const lock = await lockDataDir(dir)
      assert.equal((await lockRecord(dir)).pid, process.pid)
      await lock.release()
    })
  }

  test('a heartbeat that is not a positive integer is refused', async () => {
    await assert.rejects(lockDataDir(freshDir(), { heartbeatMs: 0 }), TypeError)
  })
})
