import assert from 'node:assert/strict'
import { readdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { lockDataDir } from '../../../src/store/data-dir-lock.js'
import { DataDirLockedError } from '../../../src/store/errors.js'
import { startProcess, type ProcessHandle } from '../../helpers/child-process.js'
import { makeTempDir, type TempDir } from '../../helpers/temp-dir.js'

/** A process that stays alive until stopped: its pid stands for another flotilla holding the lock. */
let other: ProcessHandle
/** The pid of a process that has exited (and been reaped): a lock left behind by kill -9. */
let deadPid: number
let tmp: TempDir

before(async () => {
  tmp = await makeTempDir('data-dir-lock')
  other = await startProcess(process.execPath, ['-e', 'setInterval(() => {}, 1 << 30)'], { name: 'lock-holder' })
  const gone = await startProcess(process.execPath, ['-e', ''], { name: 'gone' })
  deadPid = gone.pid
  assert.equal((await gone.exited).code, 0)
})
after(async () => {
  await other.stop('SIGKILL', 0)
  await tmp.cleanup()
})

let n = 0
const freshDir = (): string => join(tmp.path, `data-${++n}`)
const lockFile = (dir: string): string => join(dir, 'flotilla.lock')

describe('lockDataDir', () => {
  test('creates the directory and writes our pid; release removes the lock', async () => {
    const dir = freshDir()
    const lock = await lockDataDir(dir)
    assert.equal(await readFile(lockFile(dir), 'utf8'), String(process.pid))
    await lock.release()
    assert.deepEqual(await readdir(dir), [])
    await lock.release()
    const again = await lockDataDir(dir)
    await again.release()
  })

  test('a lock held by a live process is refused with DataDirLockedError', async () => {
    const dir = freshDir()
    const lock = await lockDataDir(dir)
    // Another process took the directory (its pid is in the file now).
    await writeFile(lockFile(dir), String(other.pid))
    await assert.rejects(lockDataDir(dir), (err: unknown) => {
      assert.ok(err instanceof DataDirLockedError)
      assert.equal(err.code, 'ERR_DATA_DIR_LOCKED')
      assert.equal(err.pid, other.pid)
      assert.equal(err.dir, dir)
      assert.match(err.message, new RegExp(`pid ${other.pid}`))
      return true
    })
    assert.equal(await readFile(lockFile(dir), 'utf8'), String(other.pid), 'the holder keeps its lock')
    await lock.release()
  })

  test('a fresh lock file naming a live process is refused', async () => {
    const dir = freshDir()
    await lockDataDir(dir).then((l) => l.release())
    await writeFile(lockFile(dir), `${other.pid}\n`)
    await assert.rejects(lockDataDir(dir), DataDirLockedError)
  })

  const stale: Array<[string, () => string]> = [
    ['a dead pid (kill -9 left it behind)', () => String(deadPid)],
    ['our own pid (a restarted container reuses pids)', () => String(process.pid)],
    ['garbage', () => 'not a pid'],
    ['an empty file', () => ''],
    ['pid 0', () => '0'],
  ]
  for (const [name, content] of stale) {
    test(`a stale lock with ${name} is taken over`, async () => {
      const dir = freshDir()
      await lockDataDir(dir).then((l) => l.release())
      await writeFile(lockFile(dir), content())
      const lock = await lockDataDir(dir)
      assert.equal(await readFile(lockFile(dir), 'utf8'), String(process.pid))
      await lock.release()
    })
  }
})
