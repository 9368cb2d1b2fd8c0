import { statfs } from 'node:fs/promises'

/** Size and room of a filesystem, in bytes. */
export interface DiskUsage {
  readonly totalBytes: number
  /** What an unprivileged writer may still use (bavail, not bfree: kubelet and df count it this way). */
  readonly availableBytes: number
}

/** The usage of the filesystem that holds `path`. */
export async function diskUsage (path: string): Promise<DiskUsage> {
  const s = await statfs(path)
  return { totalBytes: s.blocks * s.bsize, availableBytes: s.bavail * s.bsize }
}
