import { mkdir, open, readFile, unlink } from 'node:fs/promises'
import { join } from 'node:path'
import { DataDirLockedError } from './errors.js'

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
 * Takes `<dir>/flotilla.lock` for this process. A lock left by a dead process (kill -9) is taken over;
 * one held by a live process is refused with DataDirLockedError.
 */
export async function lockDataDir (dir: string): Promise<{ release: () => Promise<void> }> {
  await mkdir(dir, { recursive: true })
  const file = join(dir, 'flotilla.lock')
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fh = await open(file, 'wx')
      await fh.writeFile(String(process.pid))
      await fh.close()
      return { release: async () => { await unlink(file).catch(() => {}) } }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    }
    const pid = Number.parseInt(await readFile(file, 'utf8').catch(() => ''), 10)
    if (Number.isSafeInteger(pid) && pid > 0 && pid !== process.pid && isAlive(pid)) throw new DataDirLockedError(dir, pid)
    await unlink(file).catch(() => {})
  }
  throw new Error(`could not take the lock ${file}`)
}
