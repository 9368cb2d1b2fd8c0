import { randomBytes } from 'node:crypto'
import { link, mkdir, open, readdir, readFile, rename, rm, stat, unlink, type FileHandle } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import type { Readable } from 'node:stream'
import { parseDigest, type Digest } from '../oci/index.js'
import { BlobPins } from './blob-pins.js'
import type { BlobInfo, BlobStore, BlobStoreEvent, BlobWriter, ByteRange, StoredBlob } from './blob-store.js'
import { DigestVerifier } from './digest-verifier.js'
import { FileRangeStream } from './file-range-stream.js'
import { fsyncDir } from './fsync-dir.js'

export interface FsBlobStoreOptions {
  /** Clock of the last accesses (epoch ms). */
  readonly now?: () => number
}

/**
 * Blobs as files under `<dir>/blobs/<alg>/<hex>`. Writes go to `<dir>/tmp/` and are renamed into place only
 * after the digest verified, so a crash at any moment leaves either nothing or the whole blob in place;
 * leftovers in tmp/ are removed at open.
 */
export class FsBlobStore implements BlobStore {
  readonly #dir: string
  readonly #listeners = new Set<(e: BlobStoreEvent) => void>()
  readonly #now: () => number
  /** Last access per held blob, in memory: seeded from the files' times at open (atime is often relatime or off). */
  readonly #lastAccess = new Map<Digest, number>()
  readonly pins = new BlobPins()
  #total = 0

  private constructor (dir: string, options: FsBlobStoreOptions) {
    this.#dir = dir
    this.#now = options.now ?? Date.now
  }

  static async open (dir: string, options: FsBlobStoreOptions = {}): Promise<FsBlobStore> {
    const store = new FsBlobStore(dir, options)
    await rm(join(dir, 'tmp'), { recursive: true, force: true })
    await mkdir(join(dir, 'tmp'), { recursive: true })
    await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true })
    await mkdir(join(dir, 'blobs', 'sha512'), { recursive: true })
    for await (const digest of store.#digests()) {
      const s = await stat(store.#path(digest)).catch(() => undefined)
      if (s === undefined) continue
      store.#total += s.size
      store.#lastAccess.set(digest, Math.max(s.atimeMs, s.mtimeMs))
    }
    return store
  }

  #path (digest: Digest): string {
    const { algorithm, hex } = parseDigest(digest)
    return join(this.#dir, 'blobs', algorithm, hex)
  }

  async stat (digest: Digest): Promise<BlobInfo | undefined> {
    try {
      const s = await stat(this.#path(digest))
      return { digest, size: s.size }
    } catch (err) {
      if (isNotFound(err)) return undefined
      throw err
    }
  }

  async open (digest: Digest, range?: ByteRange): Promise<Readable | undefined> {
    let fh: FileHandle
    try {
      fh = await open(this.#path(digest), 'r')
    } catch (err) {
      if (isNotFound(err)) return undefined
      throw err
    }
    try {
      const { size } = await fh.stat()
      this.#lastAccess.set(digest, this.#now())
      return new FileRangeStream(fh, size, range?.start, range?.end)
    } catch (err) {
      await fh.close().catch(() => {})
      throw err
    }
  }

  async read (digest: Digest): Promise<Buffer | undefined> {
    try {
      const bytes = await readFile(this.#path(digest))
      this.#lastAccess.set(digest, this.#now())
      return bytes
    } catch (err) {
      if (isNotFound(err)) return undefined
      throw err
    }
  }

  async begin (digest: Digest, expectedSize?: number): Promise<BlobWriter> {
    const verifier = new DigestVerifier(digest, expectedSize)
    const tmp = join(this.#dir, 'tmp', `${parseDigest(digest).hex.slice(0, 16)}-${randomBytes(6).toString('hex')}`)
    let fh: FileHandle | undefined
    try {
      fh = await open(tmp, 'wx+', 0o644)
    } catch (err) {
      if (!isNoSpace(err)) throw err
    }
    // 'hashing': the disk had no room; bytes are only verified. The temporary file keeps what was written
    // before (readBack, for readers behind) until commit or abort drop it.
    let state: 'open' | 'hashing' | 'done' = fh === undefined ? 'hashing' : 'open'
    /** The end of the bytes stored whole: the offset of the first write the full disk refused. */
    let intactEnd = fh === undefined ? 0 : Number.MAX_SAFE_INTEGER
    // Stays true through commit (readers of a download still read back while it syncs): false only once given up.
    let isKeeping = fh !== undefined
    const close = async (): Promise<void> => {
      const f = fh
      fh = undefined
      await f?.close().catch(() => {})
    }
    const drop = async (): Promise<void> => {
      await close()
      await unlink(tmp).catch(() => {})
    }
    const writev = async (chunks: readonly Uint8Array[]): Promise<void> => {
      if (state === 'done') throw new Error('blob writer is closed')
      const position = verifier.size
      for (const chunk of chunks) verifier.update(chunk)
      if (fh === undefined || state === 'hashing') return
      try {
        const done = (await fh.writev(chunks as Uint8Array[], position)).bytesWritten
        if (done === verifier.size - position) return
        // A short write (rare on files, usual on a filling disk): the rest goes out as one buffer.
        const rest = Buffer.concat(chunks).subarray(done)
        for (let off = 0; off < rest.byteLength;) off += (await fh.write(rest, off, rest.byteLength - off, position + done + off)).bytesWritten
      } catch (err) {
        if (!isNoSpace(err)) throw err
        // Overlapping writes may each find the disk full: what lies past the first of them is not whole.
        intactEnd = Math.min(intactEnd, position)
        if (!isKeeping) return
        if (state === 'open') state = 'hashing'
        isKeeping = false
        this.#emit({ type: 'full', digest, size: verifier.size })
      }
    }
    return {
      digest,
      get written () { return verifier.size },
      get isKeeping () { return isKeeping },
      write: async (chunk) => { await writev([chunk]) },
      writev,
      verify: () => { verifier.verify() },
      readBack: async (position, length) => {
        if (fh === undefined) throw new Error(state === 'hashing' ? 'blob writer keeps no bytes (no space)' : 'blob writer is closed')
        const end = Math.min(verifier.size, intactEnd)
        if (position >= end && end < verifier.size) throw new Error(`blob writer keeps no bytes past ${end} (no space)`)
        const buf = Buffer.allocUnsafe(Math.max(0, Math.min(length, end - position)))
        const { bytesRead } = await fh.read(buf, 0, buf.byteLength, position)
        return buf.subarray(0, bytesRead)
      },
      commit: async () => {
        if (state === 'done') throw new Error('blob writer is closed')
        const wasKeeping = state === 'open'
        state = 'done'
        try {
          verifier.verify()
          // Durable before visible: a power cut after the rename must not leave a named blob with missing bytes.
          if (wasKeeping) await fh?.sync()
        } catch (err) {
          isKeeping = false
          await drop()
          if (!isNoSpace(err)) throw err
          this.#emit({ type: 'full', digest, size: verifier.size })
          return { digest, size: verifier.size, isKept: false }
        }
        if (!wasKeeping) {
          await drop()
          return { digest, size: verifier.size, isKept: false }
        }
        await close()
        const existed = await this.stat(digest)
        const path = this.#path(digest)
        await rename(tmp, path)
        await fsyncDir(dirname(path))
        this.#lastAccess.set(digest, this.#now())
        if (existed === undefined) {
          this.#total += verifier.size
          this.#emit({ type: 'added', digest, size: verifier.size })
        }
        return { digest, size: verifier.size, isKept: true }
      },
      abort: async () => {
        state = 'done'
        await drop()
      },
    }
  }

  async delete (digest: Digest): Promise<boolean> {
    const info = await this.stat(digest)
    if (info === undefined) return false
    try {
      await unlink(this.#path(digest))
    } catch (err) {
      if (isNotFound(err)) return false
      throw err
    }
    this.#total -= info.size
    this.#lastAccess.delete(digest)
    this.#emit({ type: 'removed', digest, size: info.size })
    return true
  }

  async * list (): AsyncIterable<StoredBlob> {
    for await (const digest of this.#digests()) {
      const s = await stat(this.#path(digest)).catch(orNotFound)
      if (s !== undefined) yield { digest, size: s.size, lastAccess: this.#lastAccess.get(digest) ?? this.#now(), isShared: s.nlink > 1 }
    }
  }


  async * #digests (): AsyncIterable<Digest> {
    for (const algorithm of ['sha256', 'sha512']) {
      const dir = join(this.#dir, 'blobs', algorithm)
      let names: string[]
      try {
        names = await readdir(dir)
      } catch (err) {
        if (isNotFound(err)) continue
        throw err
      }
      for (const hex of names) {
        const digest = `${algorithm}:${hex}`
        let parsed: Digest
        try {
          parsed = parseDigest(digest).digest
        } catch {
          continue
        }
        yield parsed
      }
    }
  }

  async totalBytes (): Promise<number> {
    return this.#total
  }

  watch (listener: (event: BlobStoreEvent) => void): () => void {
    this.#listeners.add(listener)
    return () => { this.#listeners.delete(listener) }
  }

  #emit (event: BlobStoreEvent): void {
    for (const l of this.#listeners) l(event)
  }

  /**
   * Replaces the blob's own file with a hard link to `sourcePath` (containerd's immutable copy of the same
   * bytes), so the node holds one copy and the store keeps it when the other name goes. Atomic: the link is
   * made under tmp/ and renamed over the blob, so the blob is never missing. 'mismatch' when either file is
   * absent or their sizes differ (nothing changes); 'cross-device' when the two are not on one mount.
   * `linkFile` is for tests.
   */
  async linkFrom (digest: Digest, sourcePath: string, linkFile: (from: string, to: string) => Promise<void> = link): Promise<'linked' | 'cross-device' | 'mismatch'> {
    const path = this.#path(digest)
    const [own, source] = await Promise.all([stat(path).catch(orNotFound), stat(sourcePath).catch(orNotFound)])
    if (own === undefined || source === undefined || !source.isFile() || source.size !== own.size) return 'mismatch'
    if (own.ino === source.ino && own.dev === source.dev) return 'linked'
    const tmp = join(this.#dir, 'tmp', `${parseDigest(digest).hex.slice(0, 16)}-link-${randomBytes(6).toString('hex')}`)
    try {
      await linkFile(sourcePath, tmp)
    } catch (err) {
      const code = (err as NodeJS.ErrnoException | undefined)?.code
      if (code === 'EXDEV') return 'cross-device'
      if (code === 'ENOENT') return 'mismatch'
      throw err
    }
    try {
      // The name may have been replaced between the stat and the link: check the inode that was linked.
      if ((await stat(tmp)).size !== own.size) {
        await unlink(tmp)
        return 'mismatch'
      }
      await rename(tmp, path)
      await fsyncDir(dirname(path))
    } catch (err) {
      await unlink(tmp).catch(() => {})
      throw err
    }
    return 'linked'
  }

  /** The blob's file has another name too (a hard link from containerd's store): its bytes are not ours alone. */
  async isShared (digest: Digest): Promise<boolean> {
    try {
      return (await stat(this.#path(digest))).nlink > 1
    } catch (err) {
      if (isNotFound(err)) return false
      throw err
    }
  }
}

export function isNotFound (err: unknown): boolean {
  return (err as NodeJS.ErrnoException | undefined)?.code === 'ENOENT'
}

/** The disk (or the quota, or the file size limit) has no room: the blob is streamed without being kept. */
export function isNoSpace (err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code
  return code === 'ENOSPC' || code === 'EDQUOT' || code === 'EFBIG'
}

function orNotFound (err: unknown): undefined {
  if (isNotFound(err)) return undefined
  throw err
}
