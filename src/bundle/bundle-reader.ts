import { createReadStream } from 'node:fs'
import { open, readFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { PassThrough, Transform, type Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { extract as tarExtract, type Extract } from 'tar-stream'
import type { Digest } from '../oci/index.js'
import { DigestVerifier } from '../store/digest-verifier.js'
import { asBundleDigestError, BundleError } from './bundle-error.js'
import {
  BUNDLE_INFO_NAME, digestOfBlobPath, DOCKER_MANIFEST_NAME, DOCKER_REPOSITORIES_NAME, INDEX_NAME, MAX_METADATA_BYTES,
  normalizeEntryName, OCI_LAYOUT_NAME, parseBundleInfo, parseOciIndexJson, parseOciLayout, parsePartsManifest,
  type BundleInfo, type IndexImage,
} from './bundle-format.js'
import { spawnZstd } from './zstd-process.js'

export interface BundleContents {
  /** flotilla-bundle.json; absent in foreign OCI archives (skopeo's oci-archive:, docker save). */
  info?: BundleInfo
  index: { images: IndexImage[] }
  /** readBundle: every blob whose bytes matched its digest and size. listBundle: every blob entry, unverified. */
  blobs: Map<Digest, number>
}

export interface ReadBundleOptions {
  /**
   * Called for each `blobs/<alg>/<hex>` entry. `body` errors with ERR_BUNDLE_DIGEST at its end (before 'end') when the
   * bytes do not match the digest or size, so a consumer that commits on 'end' never commits wrong bytes. A body the
   * callback does not consume is drained (and still verified) after it returns.
   */
  onBlob: (digest: Digest, size: number, body: Readable) => Promise<void>
  signal?: AbortSignal
}

type Entry = Extract extends AsyncIterable<infer E> ? E : never

const ZSTD_MAGIC = Buffer.from([0x28, 0xb5, 0x2f, 0xfd])
const END_OF_ARCHIVE = 1024
const READ_CHUNK = 1 << 20

/**
 * Reads a bundle (plain tar or zstd-compressed, told apart by its first bytes) as a stream: blobs go to `onBlob`
 * verified, metadata is parsed. A truncated file, a file that is not a tar, a missing or malformed index.json or
 * oci-layout: ERR_BUNDLE_INVALID. Memory stays bounded whatever the bundle size.
 */
export async function readBundle (file: string, o: ReadBundleOptions): Promise<BundleContents> {
  const blobs = new Map<Digest, number>()
  const meta = await scan(file, o.signal, async (digest, size, entry) => {
    const ok = await verifyBlob(file, digest, size, entry, blobs.has(digest) ? undefined : o.onBlob)
    if (ok) blobs.set(digest, size)
  })
  return { ...meta, blobs }
}

/**
 * The blobs (digest → size, from the tar headers, not hashed) and metadata of a bundle, for --exclude-from. Given a
 * `.parts.json`, all its parts together: `info` is then the first part's, without `part`, and `excluded` what no
 * part carries.
 */
export async function listBundle (file: string, o: { signal?: AbortSignal } = {}): Promise<BundleContents> {
  if (file.endsWith('.parts.json')) return await listParts(file, o.signal)
  const blobs = new Map<Digest, number>()
  const meta = await scan(file, o.signal, async (digest, size, entry) => {
    await drain(entry)
    blobs.set(digest, size)
  })
  return { ...meta, blobs }
}

async function listParts (file: string, signal: AbortSignal | undefined): Promise<BundleContents> {
  let bytes: Buffer
  try {
    bytes = await readFile(file)
  } catch (err) {
    throw new BundleError('ERR_BUNDLE_IO', `${file}: ${(err as Error).message}`, { cause: err })
  }
  if (bytes.length > MAX_METADATA_BYTES) throw new BundleError('ERR_BUNDLE_INVALID', `${file} is larger than ${MAX_METADATA_BYTES} bytes`)
  const manifest = parsePartsManifest(bytes, file)
  const blobs = new Map<Digest, number>()
  let first: BundleContents | undefined
  const excluded: Record<string, number> = {}
  for (const part of manifest.parts) {
    const contents = await listBundle(join(dirname(file), part.file), signal === undefined ? {} : { signal })
    first ??= contents
    for (const [d, n] of contents.blobs) blobs.set(d, n)
    Object.assign(excluded, contents.info?.excluded ?? {})
  }
  if (first === undefined) throw new BundleError('ERR_BUNDLE_INVALID', `${file} lists no parts`)
  for (const d of blobs.keys()) Reflect.deleteProperty(excluded, d)
  const info = first.info === undefined ? undefined : (({ part: _part, ...rest }) => ({ ...rest, excluded }))(first.info)
  return { ...(info === undefined ? {} : { info }), index: first.index, blobs }
}

interface Metadata {
  info?: BundleInfo
  index: { images: IndexImage[] }
}

/** Walks the tar: metadata entries are read bounded and parsed, blob entries go to `onBlobEntry`, others are skipped. */
async function scan (file: string, signal: AbortSignal | undefined, onBlobEntry: (digest: Digest, size: number, entry: Entry) => Promise<void>): Promise<Metadata> {
  signal?.throwIfAborted()
  const isZstd = (await firstBytes(file, ZSTD_MAGIC.length)).equals(ZSTD_MAGIC)
  const zstd = isZstd ? spawnZstd('decompress', file, signal) : undefined
  const extract = tarExtract()
  let tail = Buffer.alloc(0)
  const tailKeeper = new Transform({
    transform (chunk: Buffer, _enc, cb) {
      tail = chunk.length >= END_OF_ARCHIVE ? Buffer.from(chunk.subarray(chunk.length - END_OF_ARCHIVE)) : Buffer.concat([tail, chunk]).subarray(-END_OF_ARCHIVE)
      cb(null, chunk)
    },
  })
  const sink = async function (source: AsyncIterable<Buffer>): Promise<void> {
    for await (const chunk of source) {
      if (!extract.write(chunk)) await waitFor(extract, 'drain')
    }
    extract.end(undefined)
  }
  const input = createReadStream(file, { highWaterMark: READ_CHUNK })
  const opts = signal === undefined ? {} : { signal }
  const feed = (zstd === undefined ? pipeline(input, tailKeeper, sink, opts) : pipeline(input, zstd.stream, tailKeeper, sink, opts)).catch((err: unknown) => {
    extract.destroy(err as Error)
    throw err
  })
  feed.catch(() => { /* surfaced below */ })

  let layout = false
  let index: { images: IndexImage[] } | undefined
  let info: BundleInfo | undefined
  try {
    for await (const entry of extract) {
      const name = normalizeEntryName(entry.header.name)
      const size = entry.header.size
      const digest = entry.header.type === 'file' || entry.header.type === 'contiguous-file' ? digestOfBlobPath(name) : undefined
      if (digest !== undefined) {
        await onBlobEntry(digest, size, entry)
      } else if (entry.header.type === 'file' && [OCI_LAYOUT_NAME, INDEX_NAME, BUNDLE_INFO_NAME, DOCKER_MANIFEST_NAME, DOCKER_REPOSITORIES_NAME].includes(name)) {
        const bytes = await readBounded(file, name, size, entry)
        if (name === OCI_LAYOUT_NAME) {
          parseOciLayout(bytes)
          layout = true
        } else if (name === INDEX_NAME) index = parseOciIndexJson(bytes)
        else if (name === BUNDLE_INFO_NAME) info = parseBundleInfo(bytes)
        else parseLooseJson(bytes, name)
      } else {
        await drain(entry)
      }
    }
    await feed
    await zstd?.done
  } catch (err) {
    extract.destroy()
    zstd?.stream.destroy()
    throw explain(err, file)
  }
  if (tail.length < END_OF_ARCHIVE || tail.some((b) => b !== 0)) throw new BundleError('ERR_BUNDLE_INVALID', `${file}: truncated (no end-of-archive marker)`)
  if (!layout) throw new BundleError('ERR_BUNDLE_INVALID', `${file}: not an OCI image layout (no ${OCI_LAYOUT_NAME})`)
  if (index === undefined) throw new BundleError('ERR_BUNDLE_INVALID', `${file}: no ${INDEX_NAME}`)
  return { ...(info === undefined ? {} : { info }), index }
}

/**
 * Feeds one blob entry to `onBlob` through a stream that ends only after the bytes proved right. Returns whether
 * they did (a consumer may also have failed on the error; its own rejection wins).
 */
async function verifyBlob (file: string, digest: Digest, size: number, entry: Entry, onBlob: ReadBundleOptions['onBlob'] | undefined): Promise<boolean> {
  const body = new PassThrough({ highWaterMark: READ_CHUNK })
  body.on('error', () => { /* the consumer's own listeners see it; this keeps an unconsumed body from crashing the process */ })
  const pumped = pump(file, digest, size, entry, body)
  pumped.catch(() => { /* surfaced below */ })
  if (onBlob === undefined) body.resume()
  else {
    try {
      await onBlob(digest, size, body)
    } catch (err) {
      body.destroy()
      await pumped.catch(() => {})
      throw err
    }
    if (!body.destroyed && !body.readableEnded) body.resume() // not consumed: drain, still verifying
  }
  await pumped
  return true
}

/** Copies the entry into `body`, hashing; ends `body` only when digest and size match, errors it otherwise. */
async function pump (file: string, digest: Digest, size: number, entry: Entry, body: PassThrough): Promise<void> {
  const verifier = new DigestVerifier(digest, size)
  try {
    for await (const chunk of entry) {
      const buf = chunk as Buffer
      verifier.update(buf)
      if (!body.destroyed && !body.write(buf)) await waitFor(body, 'drain', true)
    }
    verifier.verify()
  } catch (err) {
    const e = explain(asBundleDigestError(err, `${file}: blob ${digest}`), file)
    body.destroy(e as Error)
    throw e
  }
  body.end()
}

async function readBounded (file: string, name: string, size: number, entry: Entry): Promise<Buffer> {
  if (size > MAX_METADATA_BYTES) throw new BundleError('ERR_BUNDLE_INVALID', `${file}: ${name} is ${size} bytes; the limit is ${MAX_METADATA_BYTES}`)
  const chunks: Buffer[] = []
  for await (const chunk of entry) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks)
}

function parseLooseJson (bytes: Buffer, name: string): void {
  try {
    JSON.parse(bytes.toString('utf8'))
  } catch {
    throw new BundleError('ERR_BUNDLE_INVALID', `${name} is not valid JSON`)
  }
}

async function drain (entry: Entry): Promise<void> {
  for await (const _ of entry) { /* skip */ }
}

/** Resolves on `event`; rejects when the stream closes first (or resolves, with `closeOk`). */
async function waitFor (stream: { once: (e: string, fn: () => void) => unknown, off: (e: string, fn: () => void) => unknown }, event: string, closeOk = false): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const done = (): void => {
      stream.off(event, onEvent)
      stream.off('close', onClose)
    }
    const onEvent = (): void => { done(); resolve() }
    const onClose = (): void => {
      done()
      if (closeOk) resolve()
      else reject(new BundleError('ERR_BUNDLE_IO', 'stream closed'))
    }
    stream.once(event, onEvent)
    stream.once('close', onClose)
  })
}

async function firstBytes (file: string, n: number): Promise<Buffer> {
  try {
    const fh = await open(file, 'r')
    try {
      const buf = Buffer.alloc(n)
      const { bytesRead } = await fh.read(buf, 0, n, 0)
      return buf.subarray(0, bytesRead)
    } finally {
      await fh.close()
    }
  } catch (err) {
    throw new BundleError('ERR_BUNDLE_IO', `${file}: ${(err as Error).message}`, { cause: err })
  }
}

/** tar-stream's and the file system's errors, as one line naming the file. */
function explain (err: unknown, file: string): unknown {
  if (err instanceof BundleError || (err as Error).name === 'AbortError') return err
  const message = (err as Error).message ?? String(err)
  if (/unexpected end of data/i.test(message)) return new BundleError('ERR_BUNDLE_INVALID', `${file}: truncated (unexpected end of data)`, { cause: err })
  if (/invalid (tar )?header|header exceeds|invalid header/i.test(message)) return new BundleError('ERR_BUNDLE_INVALID', `${file}: not a tar archive (${message.split('.')[0] ?? message})`, { cause: err })
  return new BundleError('ERR_BUNDLE_IO', `${file}: ${message}`, { cause: err })
}
