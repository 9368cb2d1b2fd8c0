import { createHash, randomBytes } from 'node:crypto'
import { createReadStream, createWriteStream } from 'node:fs'
import { mkdir, readFile, rename, rm, stat } from 'node:fs/promises'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { Readable, Transform } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { parseDigest, type Digest } from '../oci/index.js'
import { BundleError } from './bundle-error.js'

/** Where `flotilla save` keeps what it fetched unless told otherwise: it survives an interrupted save. */
export function defaultCacheDir (env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_CACHE_HOME !== undefined && env.XDG_CACHE_HOME !== '' ? env.XDG_CACHE_HOME : join(homedir(), '.cache')
  return join(base, 'flotilla', 'save')
}

/**
 * The content-addressed staging area of `flotilla save`: each blob is written to a temporary file while its
 * digest and size are checked, and renamed into `blobs/<alg>/<hex>` only when both match, so whatever is there
 * is whole and right, and a save that was interrupted resumes without fetching it again.
 */
export class StagingCache {
  readonly dir: string

  private constructor (dir: string) {
    this.dir = dir
  }

  static async open (dir: string): Promise<StagingCache> {
    await mkdir(join(dir, 'tmp'), { recursive: true })
    return new StagingCache(dir)
  }

  #path (digest: Digest): string {
    const { algorithm, hex } = parseDigest(digest)
    return join(this.dir, 'blobs', algorithm, hex)
  }

  /** Whether the blob is staged, whole (its size as expected, when given). */
  async has (digest: Digest, size?: number): Promise<boolean> {
    const s = await stat(this.#path(digest)).catch(() => undefined)
    return s !== undefined && (size === undefined || s.size === size)
  }

  /** Stages `body` as `digest`; bytes that do not match are an ERR_BUNDLE_DIGEST and nothing is kept. */
  async put (digest: Digest, size: number | undefined, body: Readable, signal?: AbortSignal): Promise<void> {
    const { algorithm } = parseDigest(digest)
    const tmp = join(this.dir, 'tmp', `${digest.slice(-16)}-${randomBytes(6).toString('hex')}`)
    const hash = createHash(algorithm)
    let received = 0
    const counter = new Transform({
      transform (chunk: Buffer, _encoding, done) {
        hash.update(chunk)
        received += chunk.byteLength
        done(null, chunk)
      },
    })
    try {
      await pipeline(body, counter, createWriteStream(tmp), ...(signal === undefined ? [] : [{ signal }] as const))
      const actual = `${algorithm}:${hash.digest('hex')}`
      if (actual !== digest || (size !== undefined && received !== size)) {
        throw new BundleError('ERR_BUNDLE_DIGEST', `blob ${digest}: got ${received} bytes hashing to ${actual}${size === undefined ? '' : ` (expected ${size} bytes)`}`)
      }
      await mkdir(join(this.dir, 'blobs', algorithm), { recursive: true })
      await rename(tmp, this.#path(digest))
    } finally {
      await rm(tmp, { force: true })
    }
  }

  async putBytes (digest: Digest, bytes: Buffer): Promise<void> {
    await this.put(digest, bytes.byteLength, Readable.from([bytes]))
  }

  async read (digest: Digest): Promise<Buffer> {
    return await readFile(this.#path(digest))
  }

  open (digest: Digest): Readable {
    return createReadStream(this.#path(digest), { highWaterMark: 1 << 20 })
  }
}
