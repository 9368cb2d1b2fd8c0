import { open } from 'node:fs/promises'

/**
 * Flushes a directory's entries to disk, so a rename into it survives a power cut (after the file itself was
 * fsynced). Filesystems that cannot fsync a directory (EINVAL, EISDIR on some) are left as they are.
 */
export async function fsyncDir (dir: string): Promise<void> {
  const fh = await open(dir, 'r')
  try {
    await fh.sync()
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code !== 'EINVAL' && code !== 'EISDIR' && code !== 'ENOTSUP') throw err
  } finally {
    await fh.close()
  }
}
