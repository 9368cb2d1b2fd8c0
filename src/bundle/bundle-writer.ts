import { createHash, randomUUID } from 'node:crypto'
import { createWriteStream } from 'node:fs'
import { rename, rm, writeFile } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { Transform, type Readable, type Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { pack as tarPack, type Pack } from 'tar-stream'
import { includedChildren, parseDigest, parseManifest, type Digest, type ParsedManifest } from '../oci/index.js'
import { DigestVerifier } from '../store/digest-verifier.js'
import { asBundleDigestError, BundleError } from './bundle-error.js'
import {
  blobPathOf, BUNDLE_INFO_NAME, DOCKER_MANIFEST_NAME, dockerManifestJson, INDEX_NAME, isZstdName,
  MAX_METADATA_BYTES, OCI_LAYOUT_JSON, OCI_LAYOUT_NAME, ociIndexJson, partFileName, partsManifestName, serializeBundleInfo,
  serializePartsManifest, type BundleImage, type BundleInfo, type BundlePart, type BundlePartsManifest, type DockerManifestEntry,
} from './bundle-format.js'
import { spawnZstd } from './zstd-process.js'

export interface BundleBlob {
  digest: Digest
  size: number
}

export interface WriteBundleOptions {
  /** `.tar` or `.tar.zst` (piped through the zstd program). */
  file: string
  images: BundleImage[]
  /** Everything to ship, manifests included. */
  blobs: BundleBlob[]
  /** A blob's bytes (the staging cache); the writer checks them against digest and size. */
  open: (digest: Digest) => Promise<Readable>
  /** Blobs the images need that the file does not carry (--exclude-from), digest → size. */
  excluded?: Record<string, number>
  /** Split at blob boundaries into parts of at most this many tar bytes (a larger blob gets a part to itself). */
  maxPartSize?: number
  signal?: AbortSignal
  /** Called with the running total of blob bytes written (the total to expect is the sum of `blobs` sizes). */
  onProgress?: (bytesWritten: number) => void
}

export interface WriteBundleResult {
  /** The bundle file; or every part, then `<base>.parts.json`. */
  files: string[]
  /** Bytes of the bundle file(s) on disk. */
  bytes: number
}

const BLOCK = 512
const padded = (n: number): number => Math.ceil(n / BLOCK) * BLOCK
/** A tar entry's bytes: header and padded body. */
const entryBytes = (size: number): number => BLOCK + padded(size)

interface DockerCandidate extends DockerManifestEntry { needs: Digest[] }

/**
 * Writes a bundle: `oci-layout`, `flotilla-bundle.json`, `index.json`, `manifest.json`, then each blob as
 * `blobs/<alg>/<hex>`, streamed and verified against its digest. The file appears only when complete (written as
 * `<file>.partial`, renamed at the end); on any failure nothing is left behind.
 */
export async function writeBundle (o: WriteBundleOptions): Promise<WriteBundleResult> {
  const blobs = uniqueBlobs(o.blobs)
  const excluded = { ...(o.excluded ?? {}) }
  for (const [d, size] of Object.entries(excluded)) {
    parseDigest(d)
    if (!Number.isSafeInteger(size) || size < 0) throw new TypeError(`writeBundle: excluded size of ${d} must be a non-negative integer`)
    if (blobs.some((b) => b.digest === d)) throw new TypeError(`writeBundle: ${d} is both shipped and excluded`)
  }
  if (o.images.length === 0) throw new TypeError('writeBundle: no images')
  if (o.maxPartSize !== undefined && (!Number.isSafeInteger(o.maxPartSize) || o.maxPartSize <= 0)) {
    throw new TypeError(`writeBundle: maxPartSize must be a positive integer, got ${o.maxPartSize}`)
  }
  o.signal?.throwIfAborted()

  const candidates = await dockerCandidates(o, new Set(blobs.map((b) => b.digest)))
  const createdAt = new Date().toISOString()
  const info = (part: BundlePart | undefined, extra: BundleBlob[]): BundleInfo => ({
    version: 1, createdAt, images: o.images,
    excluded: { ...excluded, ...Object.fromEntries(extra.map((b) => [b.digest, b.size])) },
    ...(part === undefined ? {} : { part }),
  })
  const groups = o.maxPartSize === undefined ? [blobs] : partition(blobs, o.maxPartSize - overhead(o.images, candidates, info({ index: 1, count: 1, id: randomUUID() }, blobs)))
  const progress = { total: 0, report: o.onProgress }

  if (groups.length <= 1) {
    const written = await writeOne(o.file, { info: info(undefined, []), images: o.images, candidates, blobs }, o, progress)
    return { files: [o.file], bytes: written.bytes }
  }

  const id = randomUUID()
  const files: string[] = []
  const manifest: BundlePartsManifest = { version: 1, id, parts: [] }
  try {
    for (const [i, group] of groups.entries()) {
      const file = partFileName(o.file, i + 1, groups.length)
      const carried = new Set(group.map((b) => b.digest))
      const others = blobs.filter((b) => !carried.has(b.digest))
      const written = await writeOne(file, { info: info({ index: i + 1, count: groups.length, id }, others), images: o.images, candidates, blobs: group }, o, progress)
      files.push(file)
      manifest.parts.push({ file: basename(file), bytes: written.bytes, sha256: written.sha256 })
    }
    const partsFile = partsManifestName(o.file)
    await writeFile(`${partsFile}.partial`, serializePartsManifest(manifest))
    await rename(`${partsFile}.partial`, partsFile)
    return { files: [...files, partsFile], bytes: manifest.parts.reduce((n, p) => n + p.bytes, 0) }
  } catch (err) {
    await Promise.all([...files, `${partsManifestName(o.file)}.partial`].map(async (f) => { await rm(f, { force: true }) }))
    throw err
  }
}

function uniqueBlobs (list: readonly BundleBlob[]): BundleBlob[] {
  const seen = new Map<string, BundleBlob>()
  for (const b of list) {
    parseDigest(b.digest)
    if (!Number.isSafeInteger(b.size) || b.size < 0) throw new TypeError(`writeBundle: size of ${b.digest} must be a non-negative integer`)
    const prior = seen.get(b.digest)
    if (prior !== undefined && prior.size !== b.size) throw new TypeError(`writeBundle: ${b.digest} given with sizes ${prior.size} and ${b.size}`)
    seen.set(b.digest, b)
  }
  return [...seen.values()]
}

/** Greedy, in the given order: a part takes blobs while they fit in `budget` tar bytes; a blob too big for any part gets its own. */
function partition (blobs: readonly BundleBlob[], budget: number): BundleBlob[][] {
  const groups: BundleBlob[][] = []
  let current: BundleBlob[] = []
  let used = 0
  for (const b of blobs) {
    const n = entryBytes(b.size)
    if (current.length > 0 && used + n > budget) {
      groups.push(current)
      current = []
      used = 0
    }
    current.push(b)
    used += n
  }
  if (current.length > 0) groups.push(current)
  return groups
}

/** An upper bound on a part's non-blob bytes: metadata entries (with every blob excluded) and the end-of-archive blocks. */
function overhead (images: readonly BundleImage[], candidates: readonly DockerCandidate[], worstInfo: BundleInfo): number {
  return entryBytes(OCI_LAYOUT_JSON.length) + entryBytes(serializeBundleInfo(worstInfo).length) + entryBytes(ociIndexJson(images).length) +
    entryBytes(dockerManifestJson(candidates).length) + 2 * BLOCK
}

/**
 * For Docker's manifest.json: each image's single-platform manifest (itself, or an index's first included
 * platform), when the bundle carries it. Manifests are read through `open`, bounded and verified.
 */
async function dockerCandidates (o: WriteBundleOptions, carried: ReadonlySet<string>): Promise<DockerCandidate[]> {
  const out: DockerCandidate[] = []
  for (const image of o.images) {
    if (!carried.has(image.digest)) continue
    let manifest = await readManifest(o, image.digest, image.size, image.mediaType)
    if (manifest.kind === 'index') {
      const child = includedChildren(manifest, image.platforms).find((d) => carried.has(d.digest) && d.platform !== undefined)
      if (child === undefined) continue
      manifest = await readManifest(o, child.digest, child.size, child.mediaType)
    }
    if (manifest.kind !== 'manifest') continue
    out.push({ ref: image.ref, manifest, needs: [manifest.config.digest, ...manifest.layers.map((l) => l.digest)] })
  }
  return out
}

async function readManifest (o: WriteBundleOptions, digest: Digest, size: number, mediaType: string): Promise<ParsedManifest> {
  if (size > MAX_METADATA_BYTES) throw new BundleError('ERR_BUNDLE_INVALID', `manifest ${digest} is ${size} bytes; the limit is ${MAX_METADATA_BYTES}`)
  const body = await openBlob(o, digest)
  const chunks: Buffer[] = []
  const verifier = new DigestVerifier(digest, size)
  try {
    for await (const chunk of body) {
      verifier.update(chunk as Buffer)
      chunks.push(chunk as Buffer)
    }
    verifier.verify()
  } catch (err) {
    throw asBundleDigestError(err, `manifest ${digest}`)
  } finally {
    body.destroy()
  }
  try {
    return parseManifest(Buffer.concat(chunks), mediaType)
  } catch (err) {
    throw new BundleError('ERR_BUNDLE_INVALID', `manifest ${digest} is malformed: ${(err as Error).message}`, { cause: err })
  }
}

async function openBlob (o: WriteBundleOptions, digest: Digest): Promise<Readable> {
  try {
    return await o.open(digest)
  } catch (err) {
    if (err instanceof BundleError) throw err
    throw new BundleError('ERR_BUNDLE_IO', `cannot read blob ${digest}: ${(err as Error).message}`, { cause: err })
  }
}

interface FileContent {
  info: BundleInfo
  images: readonly BundleImage[]
  candidates: readonly DockerCandidate[]
  blobs: readonly BundleBlob[]
}

/** Writes one complete tar (or .tar.zst) at `file` via `<file>.partial`; returns its size and sha256 (hex). */
async function writeOne (file: string, c: FileContent, o: WriteBundleOptions, progress: { total: number, report?: ((n: number) => void) | undefined }): Promise<{ bytes: number, sha256: string }> {
  const partial = join(dirname(file), `${basename(file)}.partial`)
  const tar = tarPack()
  const hash = createHash('sha256')
  let bytes = 0
  const counter = new Transform({
    transform (chunk: Buffer, _enc, cb) {
      hash.update(chunk)
      bytes += chunk.length
      cb(null, chunk)
    },
  })
  const zstd = isZstdName(file) ? spawnZstd('compress', file, o.signal) : undefined
  const out = createWriteStream(partial)
  const stages = [tar as unknown as Readable, ...(zstd === undefined ? [] : [zstd.stream]), counter, out] as const
  const sink = pipeline(stages as unknown as [Readable, Writable], o.signal === undefined ? {} : { signal: o.signal })
  const carried = new Set(c.blobs.map((b) => b.digest))
  const produce = (async () => {
    const mtime = new Date(c.info.createdAt)
    await addEntry(tar, OCI_LAYOUT_NAME, OCI_LAYOUT_JSON, mtime)
    await addEntry(tar, BUNDLE_INFO_NAME, serializeBundleInfo(c.info), mtime)
    await addEntry(tar, INDEX_NAME, ociIndexJson(c.images), mtime)
    await addEntry(tar, DOCKER_MANIFEST_NAME, dockerManifestJson(c.candidates.filter((d) => d.needs.every((n) => carried.has(n)))), mtime)
    for (const b of c.blobs) {
      o.signal?.throwIfAborted()
      await addBlob(tar, b, await openBlob(o, b.digest), mtime, (n) => {
        progress.total += n
        progress.report?.(progress.total)
      })
    }
    tar.finalize()
  })().catch((err: unknown) => {
    tar.destroy(err as Error)
    throw err
  })
  const [produced, sunk] = await Promise.allSettled([produce, sink])
  try {
    if (produced.status === 'rejected') throw produced.reason
    if (sunk.status === 'rejected') throw sunk.reason
    await zstd?.done
    await rename(partial, file)
    return { bytes, sha256: hash.digest('hex') }
  } catch (err) {
    zstd?.stream.destroy()
    await rm(partial, { force: true })
    throw wrapIo(err, file)
  }
}

function wrapIo (err: unknown, file: string): unknown {
  if (err instanceof BundleError || (err as Error).name === 'AbortError' || err instanceof TypeError) return err
  return new BundleError('ERR_BUNDLE_IO', `${file}: ${(err as Error).message}`, { cause: err })
}

async function addEntry (tar: Pack, name: string, body: Buffer, mtime: Date): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const entry = tar.entry({ name, size: body.length, mode: 0o644, mtime, type: 'file' }, body, (err) => { if (err !== null && err !== undefined) reject(err); else resolve() })
    entry.on('error', () => { /* reported through the callback */ })
  })
}

/** Streams one blob into the tar with its size declared up front; the bytes must match digest and size. */
async function addBlob (tar: Pack, b: BundleBlob, body: Readable, mtime: Date, onBytes: (n: number) => void): Promise<void> {
  const verifier = new DigestVerifier(b.digest, b.size)
  let entryError: Error | undefined
  let settle: (err?: Error | null) => void = () => {}
  const done = new Promise<void>((resolve, reject) => {
    settle = (err) => { if (err !== null && err !== undefined) reject(err); else resolve() }
  })
  done.catch(() => { /* surfaced below */ })
  const entry = tar.entry({ name: blobPathOf(b.digest), size: b.size, mode: 0o644, mtime, type: 'file' }, (err) => {
    if (err !== null && err !== undefined) entryError = err
    settle(err)
  })
  entry.on('error', () => { /* reported through the callback */ })
  try {
    for await (const chunk of body) {
      const buf = chunk as Buffer
      verifier.update(buf)
      if (!entry.write(buf)) await drained(entry)
      if (entryError !== undefined) throw entryError
      onBytes(buf.length)
    }
    verifier.verify()
  } catch (err) {
    throw asBundleDigestError(err, `blob ${b.digest}`)
  } finally {
    body.destroy()
  }
  entry.end(undefined)
  await done
  if (entryError !== undefined) throw entryError
}

type TarEntry = ReturnType<Pack['entry']>

async function drained (entry: TarEntry): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const cleanup = (): void => {
      entry.removeListener('drain', onDrain)
      entry.removeListener('close', onClose)
    }
    const onDrain = (): void => { cleanup(); resolve() }
    const onClose = (): void => { cleanup(); reject(new BundleError('ERR_BUNDLE_IO', 'the bundle stream closed while a blob was written')) }
    entry.on('drain', onDrain)
    entry.on('close', onClose)
  })
}
