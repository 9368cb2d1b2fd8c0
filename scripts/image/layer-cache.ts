// Layers compressed by earlier builds, reused when nothing that goes into them changed.
import { createHash } from 'node:crypto'
import { copyFile, mkdir, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Layer } from './blob.js'
import { BUILDER_VERSION } from './constants.js'
import { normalize, type Entry } from './entries.js'
import { writeLayer } from './write-layer.js'

/**
 * Layers already compressed by an earlier build, keyed by everything that goes into them (paths, modes,
 * owners, contents or the size and mtime of the source files, the timestamp): a rebuild with unchanged Node,
 * glibc and node_modules then only compresses the app layer. Entries not used by a build are pruned after it.
 */
export class LayerCache {
  readonly used = new Set<string>()
  constructor (readonly dir: string) {}

  async key (name: string, entries: Entry[], mtime: Date): Promise<string> {
    const hash = createHash('sha256').update(`${BUILDER_VERSION}\0${name}\0${mtime.getTime()}\0`)
    for (const e of entries) {
      if (e.type === 'file' && 'source' in e) {
        const st = await stat(e.source)
        hash.update(JSON.stringify([e.path, e.mode, e.source, e.size, st.size, st.mtimeMs, st.ino]))
      } else if (e.type === 'file') {
        hash.update(JSON.stringify([e.path, e.mode, createHash('sha256').update(e.content).digest('hex')]))
      } else {
        hash.update(JSON.stringify(e))
      }
      hash.update('\0')
    }
    return hash.digest('hex')
  }

  async get (key: string, blobsDir: string): Promise<Layer | undefined> {
    try {
      const layer = JSON.parse(await readFile(join(this.dir, `${key}.json`), 'utf8')) as Layer
      await copyFile(join(this.dir, key), join(blobsDir, layer.digest.slice('sha256:'.length)))
      this.used.add(key)
      return layer
    } catch {
      return undefined
    }
  }

  async put (key: string, blobsDir: string, layer: Layer): Promise<void> {
    await mkdir(this.dir, { recursive: true })
    await copyFile(join(blobsDir, layer.digest.slice('sha256:'.length)), join(this.dir, `${key}.tmp`))
    await rename(join(this.dir, `${key}.tmp`), join(this.dir, key))
    await writeFile(join(this.dir, `${key}.json`), JSON.stringify(layer))
    this.used.add(key)
  }

  async prune (): Promise<void> {
    for (const file of await readdir(this.dir).catch(() => [] as string[])) {
      if (!this.used.has(file.replace(/\.(json|tmp)$/, ''))) await rm(join(this.dir, file), { force: true })
    }
  }
}

/** writeLayer, or the same layer from the cache. */
export async function cachedLayer (cache: LayerCache, blobsDir: string, name: string, entries: Entry[], mtime: Date): Promise<Layer> {
  const sorted = normalize(entries)
  const key = await cache.key(name, sorted, mtime)
  const hit = await cache.get(key, blobsDir)
  if (hit !== undefined) return hit
  const layer = await writeLayer(blobsDir, name, sorted, mtime)
  await cache.put(key, blobsDir, layer)
  return layer
}
