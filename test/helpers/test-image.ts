import { createCipheriv, createHash } from 'node:crypto'
import { createWriteStream } from 'node:fs'
import { copyFile, lutimes, mkdir, readFile, rename, rm, symlink, utimes, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { runCommandChecked } from './run-command.js'
import { skopeoCopy } from './skopeo.js'
import { makeTempDir, type TempDir } from './temp-dir.js'

export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json'
export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json'

export interface TestImagePlatform {
  os: string
  architecture: string
}

export interface TestImageLayer {
  digest: string
  size: number
  mediaType: string
}

export interface TestImageManifest {
  platform: TestImagePlatform
  digest: string
  size: number
  configDigest: string
  configSize: number
  /** [busybox layer, large random layer] */
  layers: TestImageLayer[]
}

export interface TestImage {
  layoutDir: string
  /** The OCI layout tag (`ref.name`) that names the index. */
  tag: string
  indexDigest: string
  indexSize: number
  manifests: TestImageManifest[]
  /** Everything served from `/v2/<repo>/blobs/`: configs and layers, unique, sorted. */
  allBlobDigests: string[]
  /** Index, manifests, configs and layers: everything a full copy stores. */
  allDigests: string[]
  largeLayerDigest: string
  largeLayerSize: number
}

export interface BuildTestImageOptions {
  /** Build here (the caller removes it). When omitted, a per-process temp dir removed at exit. */
  workDir?: string
  /** Size of the incompressible second layer; default 24. */
  largeLayerMiB?: number
  /** Layout tag naming the index; default 'multi'. */
  tag?: string
}

/** The platforms of the index; the host's own comes first when it is one of them. */
export const TEST_IMAGE_PLATFORMS: readonly TestImagePlatform[] = [
  { os: 'linux', architecture: 'amd64' },
  { os: 'linux', architecture: 'arm64' },
]

const BUSYBOX = '/bin/busybox'
const BUSYBOX_LINKS = ['sh', 'ls', 'echo', 'cat', 'sleep']
const FIXED_TIME = new Date('2024-01-01T00:00:00Z')
const UMOCI_TIMEOUT_MS = 60_000

const memo = new Map<string, Promise<TestImage>>()
let sharedDir: Promise<TempDir> | undefined

/**
 * Builds (once per process and options) an OCI layout holding a multi-arch index for linux/amd64 and
 * linux/arm64. Both manifests share the layers (a runnable busybox rootfs, entrypoint /bin/sh, and
 * `largeLayerMiB` MiB of seeded pseudo-random bytes) and differ in their config (architecture).
 * umoci only makes single-platform images, so the index blob is written here.
 */
export async function buildTestImage (options: BuildTestImageOptions = {}): Promise<TestImage> {
  const largeLayerMiB = options.largeLayerMiB ?? 24
  const tag = options.tag ?? 'multi'
  if (!Number.isInteger(largeLayerMiB) || largeLayerMiB < 1 || largeLayerMiB > 1024) throw new TypeError(`buildTestImage: largeLayerMiB must be an integer in 1..1024, got ${largeLayerMiB}`)
  if (!/^[\w][\w.-]{0,127}$/.test(tag)) throw new TypeError(`buildTestImage: invalid tag ${tag}`)
  const key = JSON.stringify([options.workDir ?? null, largeLayerMiB, tag])
  let built = memo.get(key)
  if (built === undefined) {
    built = build(options.workDir, largeLayerMiB, tag)
    memo.set(key, built)
    built.catch(() => memo.delete(key))
  }
  return await built
}

/**
 * Pushes the layout's `tag` (index and all platforms, digests preserved) to a plain-HTTP registry.
 * Returns the pushed reference `<registryHost>/<repo>:<tag>`.
 */
export async function pushTestImage (layoutDir: string, registryHost: string, repo: string, tag: string): Promise<string> {
  const ref = `${registryHost}/${repo}:${tag}`
  await skopeoCopy(`oci:${layoutDir}:${tag}`, `docker://${ref}`, { all: true, preserveDigests: true, timeoutMs: 120_000 })
  return ref
}

async function build (workDir: string | undefined, largeLayerMiB: number, tag: string): Promise<TestImage> {
  let base = workDir
  if (base === undefined) {
    sharedDir ??= makeTempDir('test-image')
    base = (await sharedDir).path
  }
  const root = join(base, `test-image-${largeLayerMiB}mib-${tag}`)
  const layoutDir = join(root, 'layout')
  const rootfs = join(root, 'rootfs')
  const dataDir = join(root, 'data')
  await rm(root, { recursive: true, force: true }) // a failed earlier attempt
  await mkdir(join(rootfs, 'bin'), { recursive: true })
  await mkdir(dataDir, { recursive: true })

  await copyFile(BUSYBOX, join(rootfs, 'bin', 'busybox'))
  for (const name of BUSYBOX_LINKS) await symlink('busybox', join(rootfs, 'bin', name))
  await writeSeededBytes(join(dataDir, 'large.bin'), largeLayerMiB * 1024 * 1024, `flotilla-test-image-${largeLayerMiB}`)
  // Fixed mtimes keep the layer tars (and so their digests) stable from one build to the next.
  for (const p of [join(rootfs, 'bin', 'busybox'), join(rootfs, 'bin'), rootfs, join(dataDir, 'large.bin'), dataDir]) await utimes(p, FIXED_TIME, FIXED_TIME)
  for (const name of BUSYBOX_LINKS) await lutimes(join(rootfs, 'bin', name), FIXED_TIME, FIXED_TIME)

  const created = FIXED_TIME.toISOString()
  const umoci = async (...args: string[]): Promise<void> => { await runCommandChecked('umoci', args, { timeoutMs: UMOCI_TIMEOUT_MS }) }
  const [first, ...others] = TEST_IMAGE_PLATFORMS
  if (first === undefined) throw new Error('no platforms')
  const platformTag = (p: TestImagePlatform): string => `${tag}-${p.os}-${p.architecture}`
  const img = (p: TestImagePlatform): string => `${layoutDir}:${platformTag(p)}`
  await umoci('init', '--layout', layoutDir)
  await umoci('new', '--image', img(first))
  await umoci('insert', '--history.created', created, '--image', img(first), rootfs, '/')
  await umoci('insert', '--history.created', created, '--image', img(first), dataDir, '/data')
  await umoci('config', '--image', img(first), '--created', created, '--history.created', created,
    '--os', first.os, '--architecture', first.architecture, '--config.entrypoint', '/bin/sh', '--config.workingdir', '/')
  for (const p of others) {
    // Same layers, new config: only the platform differs.
    await umoci('config', '--image', img(first), '--tag', platformTag(p), '--created', created,
      '--history.created', created, '--os', p.os, '--architecture', p.architecture)
  }

  const layoutIndexPath = join(layoutDir, 'index.json')
  const layoutIndex = JSON.parse(await readFile(layoutIndexPath, 'utf8')) as OciIndex
  const byRef = new Map(layoutIndex.manifests.map((d) => [d.annotations?.['org.opencontainers.image.ref.name'], d]))
  const platformDescriptors = TEST_IMAGE_PLATFORMS.map((p) => {
    const d = byRef.get(platformTag(p))
    if (d === undefined) throw new Error(`umoci did not tag ${img(p)}`)
    return { mediaType: OCI_MANIFEST, digest: d.digest, size: d.size, platform: { architecture: p.architecture, os: p.os } }
  })
  const indexBytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: platformDescriptors }))
  const indexDigest = sha256(indexBytes)
  await writeFile(blobPath(layoutDir, indexDigest), indexBytes)
  layoutIndex.manifests.push({
    mediaType: OCI_INDEX,
    digest: indexDigest,
    size: indexBytes.length,
    annotations: { 'org.opencontainers.image.ref.name': tag },
  })
  const tmpIndex = `${layoutIndexPath}.tmp`
  await writeFile(tmpIndex, JSON.stringify(layoutIndex))
  await rename(tmpIndex, layoutIndexPath)
  return await readTestImage(layoutDir, tag)
}

interface OciDescriptor {
  mediaType: string
  digest: string
  size: number
  platform?: TestImagePlatform
  annotations?: Record<string, string>
}
interface OciIndex { schemaVersion: 2, mediaType?: string, manifests: OciDescriptor[] }
interface OciManifest { schemaVersion: 2, mediaType?: string, config: OciDescriptor, layers: OciDescriptor[] }

/** Reads the index named `tag` from an OCI layout, verifying every digest it walks. */
export async function readTestImage (layoutDir: string, tag: string): Promise<TestImage> {
  const layoutIndex = JSON.parse(await readFile(join(layoutDir, 'index.json'), 'utf8')) as OciIndex
  const top = layoutIndex.manifests.find((d) => d.annotations?.['org.opencontainers.image.ref.name'] === tag)
  if (top === undefined || top.mediaType !== OCI_INDEX) throw new Error(`${layoutDir}: no OCI index tagged ${tag}`)
  const index = JSON.parse((await readBlob(layoutDir, top)).toString('utf8')) as OciIndex
  const manifests: TestImageManifest[] = []
  for (const d of index.manifests) {
    if (d.platform === undefined) throw new Error(`${layoutDir}: index entry ${d.digest} has no platform`)
    const manifest = JSON.parse((await readBlob(layoutDir, d)).toString('utf8')) as OciManifest
    await readBlob(layoutDir, manifest.config)
    manifests.push({
      platform: { os: d.platform.os, architecture: d.platform.architecture },
      digest: d.digest,
      size: d.size,
      configDigest: manifest.config.digest,
      configSize: manifest.config.size,
      layers: manifest.layers.map((l) => ({ digest: l.digest, size: l.size, mediaType: l.mediaType })),
    })
  }
  const layers = manifests.flatMap((m) => m.layers)
  const largest = layers.reduce<TestImageLayer | undefined>((a, l) => (a === undefined || l.size > a.size ? l : a), undefined)
  if (largest === undefined) throw new Error(`${layoutDir}: image has no layers`)
  const allBlobDigests = [...new Set([...manifests.map((m) => m.configDigest), ...layers.map((l) => l.digest)])].sort()
  return {
    layoutDir,
    tag,
    indexDigest: top.digest,
    indexSize: top.size,
    manifests,
    allBlobDigests,
    allDigests: [...new Set([top.digest, ...manifests.map((m) => m.digest), ...allBlobDigests])].sort(),
    largeLayerDigest: largest.digest,
    largeLayerSize: largest.size,
  }
}

/** The Go/OCI architecture name of this machine, e.g. amd64. */
export function hostArchitecture (): string {
  const map: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' }
  return map[process.arch] ?? process.arch
}

/** The manifest for this machine's platform. */
export function hostManifest (image: TestImage): TestImageManifest {
  const arch = hostArchitecture()
  const m = image.manifests.find((x) => x.platform.os === 'linux' && x.platform.architecture === arch)
  if (m === undefined) throw new Error(`test image has no linux/${arch} manifest`)
  return m
}

export function blobPath (layoutDir: string, digest: string): string {
  const [algorithm, hex] = digest.split(':')
  if (algorithm !== 'sha256' || hex === undefined || !/^[a-f0-9]{64}$/.test(hex)) throw new Error(`unsupported digest ${digest}`)
  return join(layoutDir, 'blobs', algorithm, hex)
}

async function readBlob (layoutDir: string, d: OciDescriptor): Promise<Buffer> {
  const bytes = await readFile(blobPath(layoutDir, d.digest))
  if (bytes.length !== d.size || sha256(bytes) !== d.digest) throw new Error(`${layoutDir}: blob ${d.digest} does not match its descriptor`)
  return bytes
}

function sha256 (bytes: Buffer): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`
}

/** Deterministic, incompressible bytes: AES-128-CTR keystream seeded from `seed`. */
async function writeSeededBytes (path: string, size: number, seed: string): Promise<void> {
  const key = createHash('sha256').update(seed).digest()
  const cipher = createCipheriv('aes-128-ctr', key.subarray(0, 16), key.subarray(16, 32))
  const zeros = Buffer.alloc(1024 * 1024)
  async function * chunks (): AsyncGenerator<Buffer> {
    for (let written = 0; written < size; written += zeros.length) {
      yield cipher.update(zeros.subarray(0, Math.min(zeros.length, size - written)))
    }
  }
  await pipeline(Readable.from(chunks()), createWriteStream(path))
}
