// Layers: what goes into a tar, as a list of entries (from trees on this machine or literal content).
import { lstat, readdir, readlink } from 'node:fs/promises'
import { join, relative } from 'node:path'

export type Entry =
  | { path: string, type: 'directory', mode: number, uid?: number, gid?: number }
  | { path: string, type: 'file', mode: number, source: string, size: number }
  | { path: string, type: 'file', mode: number, content: Buffer }
  | { path: string, type: 'symlink', target: string }

/** Adds the entries of a directory tree on this machine under `imageDir` (regular files, dirs, symlinks). */
export async function addTree (entries: Entry[], sourceDir: string, imageDir: string, skip: (rel: string) => boolean = () => false): Promise<void> {
  const walk = async (dir: string): Promise<void> => {
    for (const name of await readdir(dir)) {
      const full = join(dir, name)
      const rel = relative(sourceDir, full)
      if (skip(rel)) continue
      const path = `${imageDir}/${rel}`
      const st = await lstat(full)
      if (st.isSymbolicLink()) {
        entries.push({ path, type: 'symlink', target: await readlink(full) })
      } else if (st.isDirectory()) {
        entries.push({ path, type: 'directory', mode: 0o755 })
        await walk(full)
      } else if (st.isFile()) {
        entries.push({ path, type: 'file', mode: (st.mode & 0o111) !== 0 ? 0o755 : 0o644, source: full, size: st.size })
      }
    }
  }
  await walk(sourceDir)
}

/** Adds the missing parent directories (root-owned, 0755), dedupes, sorts: a tar that unpacks the same anywhere. */
export function normalize (entries: Entry[]): Entry[] {
  const byPath = new Map<string, Entry>()
  for (const e of entries) {
    const path = e.path.replace(/^\/+/, '').replace(/\/+$/, '')
    if (byPath.has(path)) throw new Error(`duplicate layer entry ${path}`)
    byPath.set(path, { ...e, path })
  }
  for (const path of [...byPath.keys()]) {
    const parts = path.split('/')
    for (let i = 1; i < parts.length; i++) {
      const parent = parts.slice(0, i).join('/')
      if (!byPath.has(parent)) byPath.set(parent, { path: parent, type: 'directory', mode: 0o755 })
    }
  }
  return [...byPath.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
}
