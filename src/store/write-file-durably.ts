import { randomBytes } from 'node:crypto'
import { open, rename, unlink } from 'node:fs/promises'
import { dirname } from 'node:path'
import { fsyncDir } from './fsync-dir.js'

/**
 * Replaces `file` with `text` so that a crash or a power cut leaves the old or the new version, never a torn
 * one: written to a temporary file, fsynced, renamed over, and the directory fsynced.
 */
export async function writeFileDurably (file: string, text: string): Promise<void> {
  const tmp = `${file}.${randomBytes(4).toString('hex')}.tmp`
  const fh = await open(tmp, 'w', 0o644)
  try {
    await fh.writeFile(text)
    await fh.sync()
  } catch (err) {
    await fh.close()
    await unlink(tmp).catch(() => {})
    throw err
  }
  await fh.close()
  await rename(tmp, file)
  await fsyncDir(dirname(file))
}
