// Issue 13, the container image end to end: `npm run --silent image` builds the OCI archive from this tree
// (no Docker engine), a fresh real containerd imports it (`ctr images import`), runs it (`ctr run --net-host`,
// runc) with FLOTILLA_* environment variables only, and the registry API and the status page answer from inside
// the container, served by a process running as the image's non-root user 65532.
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { pipeline } from 'node:stream/promises'
import { after, before, describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { createGunzip } from 'node:zlib'
import tarStream from 'tar-stream'
import { DEFAULT_IMAGE, FLOTILLA_VERSION } from '../../src/deploy/default-image.js'
import { startProcess, type ProcessHandle } from '../helpers/child-process.js'
import { startContainerd, type Containerd } from '../helpers/containerd.js'
import { freePort } from '../helpers/free-port.js'
import { runCommand, runCommandChecked } from '../helpers/run-command.js'
import { waitFor } from '../helpers/wait-for.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const NAMESPACE = 'flotilla-image'
const CONTAINER = 'flotilla-image-test'
const APP_UID = 65532
const HOST_ARCH = process.arch === 'arm64' ? 'arm64' : 'amd64'

interface Descriptor { mediaType: string, digest: string, size: number, platform?: { os: string, architecture: string }, annotations?: Record<string, string> }
interface ImageIndex { manifests: Descriptor[] }
interface ImageManifest { config: Descriptor, layers: Descriptor[] }
interface ImageConfig {
  architecture: string
  os: string
  config: { User: string, Entrypoint: string[], Cmd: string[], Env: string[], WorkingDir: string, ExposedPorts: Record<string, unknown>, Labels: Record<string, string> }
  rootfs: { diff_ids: string[] }
}

/**
 * Reads the archive's small files (index.json, oci-layout, JSON blobs) and the digest and size of every
 * blob, streaming: the layers are hashed, not kept.
 */
async function readArchive (path: string): Promise<{ files: Map<string, Buffer>, blobs: Map<string, { digest: string, size: number }> }> {
  const files = new Map<string, Buffer>()
  const blobs = new Map<string, { digest: string, size: number }>()
  const extract = tarStream.extract()
  extract.on('entry', (header, stream, next) => {
    const hash = createHash('sha256')
    const chunks: Buffer[] = []
    let size = 0
    stream.on('data', (data: unknown) => {
      const chunk = data as Buffer
      hash.update(chunk)
      size += chunk.length
      if (size <= 1 << 20) chunks.push(chunk)
    })
    stream.on('end', () => {
      if (header.type === 'file') {
        if (size <= 1 << 20) files.set(header.name, Buffer.concat(chunks))
        if (header.name.startsWith('blobs/sha256/')) blobs.set(header.name, { digest: `sha256:${hash.digest('hex')}`, size })
      }
      next()
    })
  })
  await pipeline(createReadStream(path), extract)
  return { files, blobs }
}

/** ELF e_machine of Node's binary per OCI architecture, and where its interpreter must be. */
const ELF = { amd64: { machine: 0x3e, interpreter: 'lib64/ld-linux-x86-64.so.2', triplet: 'x86_64-linux-gnu' }, arm64: { machine: 0xb7, interpreter: 'lib/ld-linux-aarch64.so.1', triplet: 'aarch64-linux-gnu' } } as const
const NODE_NEEDED = ['libc.so.6', 'libdl.so.2', 'libgcc_s.so.1', 'libm.so.6', 'libpthread.so.0', 'libstdc++.so.6']

/**
 * The entries of the gzipped layers `digests` inside the archive, with the first bytes of /usr/local/bin/node:
 * what a platform that cannot be run here (no emulator) is checked by.
 */
async function layerContents (archivePath: string, digests: ReadonlySet<string>): Promise<Map<string, { names: Set<string>, nodeHead?: Buffer }>> {
  const result = new Map<string, { names: Set<string>, nodeHead?: Buffer }>()
  const outer = tarStream.extract()
  outer.on('entry', (header, stream, next) => {
    const digest = `sha256:${header.name.slice('blobs/sha256/'.length)}`
    if (!header.name.startsWith('blobs/sha256/') || !digests.has(digest)) {
      stream.on('end', next)
      stream.resume()
      return
    }
    const layer: { names: Set<string>, nodeHead?: Buffer } = { names: new Set() }
    result.set(digest, layer)
    const inner = tarStream.extract()
    inner.on('entry', (h, s, n) => {
      layer.names.add(h.name.replace(/\/$/, ''))
      if (h.name === 'usr/local/bin/node') s.once('data', (data: unknown) => { layer.nodeHead = (data as Buffer).subarray(0, 64) })
      s.on('end', n)
      s.resume()
    })
    pipeline(stream, createGunzip(), inner).then(() => next(), next)
  })
  await pipeline(createReadStream(archivePath), outer)
  return result
}

describe('container image (npm run image → containerd → ctr run)', { timeout: 600_000 }, () => {
  let archive: string
  let ctrd: Containerd | undefined
  let container: ProcessHandle | undefined
  let url: string
  let buildSeconds: number

  before(async () => {
    // Always from the current tree; the script reuses its cached downloads and unchanged layers.
    const started = Date.now()
    const built = await runCommandChecked('npm', ['run', '--silent', 'image'], { cwd: ROOT, timeoutMs: 300_000 })
    buildSeconds = (Date.now() - started) / 1000
    archive = built.stdout.trim().split('\n').pop() ?? ''
    assert.match(archive, /\/dist-image\/flotilla-.+\.oci\.tar$/, `last line of stdout is the archive's path; stdout:\n${built.stdout}`)
    ctrd = await startContainerd({ namespace: NAMESPACE })
  })

  after(async () => {
    if (ctrd !== undefined && container?.isRunning === true) {
      await ctrd.ctr(['tasks', 'kill', '-s', 'SIGKILL', CONTAINER], { timeoutMs: 10_000 })
    }
    await container?.stop('SIGTERM', 10_000)
    await ctrd?.ctr(['containers', 'rm', CONTAINER], { timeoutMs: 10_000 }) // gone already with --rm, unless the run failed
    await ctrd?.stop()
  })

  test('the archive is an OCI layout: one index named for deploy/, a manifest per platform, blobs that match their digests', async () => {
    const { files, blobs } = await readArchive(archive)
    assert.deepEqual(JSON.parse(files.get('oci-layout')?.toString() ?? '{}'), { imageLayoutVersion: '1.0.0' })
    const top = JSON.parse(files.get('index.json')?.toString() ?? '{}') as ImageIndex
    assert.equal(top.manifests.length, 1)
    const named = top.manifests[0] as Descriptor
    assert.equal(named.annotations?.['io.containerd.image.name'], DEFAULT_IMAGE)
    assert.equal(named.annotations?.['org.opencontainers.image.ref.name'], DEFAULT_IMAGE)
    for (const [name, blob] of blobs) assert.equal(blob.digest, `sha256:${name.slice('blobs/sha256/'.length)}`, `${name} has the bytes its name says`)
    const json = <T>(d: Descriptor): T => {
      const bytes = files.get(`blobs/sha256/${d.digest.slice('sha256:'.length)}`)
      assert.ok(bytes !== undefined, `${d.digest} in the archive`)
      assert.equal(bytes.length, d.size)
      return JSON.parse(bytes.toString()) as T
    }
    const index = json<ImageIndex>(named)
    const platforms = index.manifests.map((m) => `${m.platform?.os ?? '?'}/${m.platform?.architecture ?? '?'}`)
    assert.ok(platforms.includes(`linux/${HOST_ARCH}`), `the index has this machine's platform: ${platforms.join(', ')}`)
    for (const m of index.manifests) {
      const manifest = json<ImageManifest>(m)
      const config = json<ImageConfig>(manifest.config)
      assert.equal(config.architecture, m.platform?.architecture)
      assert.equal(config.config.User, `${APP_UID}:${APP_UID}`)
      assert.deepEqual(config.config.Cmd, ['serve'])
      assert.equal(config.config.Entrypoint[0], '/usr/local/bin/node')
      assert.ok(config.config.Env.includes('FLOTILLA_DATA_DIR=/var/lib/flotilla'))
      assert.deepEqual(Object.keys(config.config.ExposedPorts).sort(), ['5000/tcp', '5001/tcp'])
      assert.equal(config.config.Labels['org.opencontainers.image.version'], FLOTILLA_VERSION)
      assert.equal(config.rootfs.diff_ids.length, manifest.layers.length)
      for (const layer of manifest.layers) {
        const blob = blobs.get(`blobs/sha256/${layer.digest.slice('sha256:'.length)}`)
        assert.equal(blob?.size, layer.size, `layer ${layer.digest} present with its size`)
      }
    }
    // Every platform's runtime layer: Node for that CPU, its ELF interpreter and libraries, the user, /tmp.
    const manifests = index.manifests.map((m) => ({ arch: m.platform?.architecture as keyof typeof ELF, manifest: json<ImageManifest>(m) }))
    const contents = await layerContents(archive, new Set(manifests.map((m) => m.manifest.layers[0]?.digest ?? '')))
    for (const { arch, manifest } of manifests) {
      const runtime = contents.get(manifest.layers[0]?.digest ?? '')
      const elf = ELF[arch]
      assert.ok(runtime !== undefined && elf !== undefined, `runtime layer of linux/${arch}`)
      assert.equal(runtime.nodeHead?.subarray(0, 4).toString('latin1'), '\x7fELF', `linux/${arch}: usr/local/bin/node is an ELF file`)
      assert.equal(runtime.nodeHead?.readUInt16LE(18), elf.machine, `linux/${arch}: usr/local/bin/node is built for ${arch}`)
      for (const name of [elf.interpreter, ...NODE_NEEDED.map((lib) => `lib/${elf.triplet}/${lib}`), 'etc/passwd', 'etc/group', 'tmp', 'var/lib/flotilla']) {
        assert.ok(runtime.names.has(name), `linux/${arch}: ${name} in the runtime layer`)
      }
    }
    const size = (await stat(archive)).size
    process.stderr.write(`container image: ${platforms.join(' + ')}, ${(size / 1048576).toFixed(1)} MiB, built in ${buildSeconds.toFixed(1)} s\n`)
  })

  test('containerd imports it and runs it as uid 65532; /v2/ and /status.json answer from inside', async () => {
    assert.ok(ctrd !== undefined)
    const imported = await ctrd.ctr(['images', 'import', '--snapshotter', ctrd.snapshotter, archive], { timeoutMs: 180_000 })
    assert.equal(imported.code, 0, `ctr images import: ${imported.stderr}`)
    const listed = await ctrd.ctr(['images', 'ls', '-q'], { timeoutMs: 10_000 })
    assert.ok(listed.stdout.split('\n').includes(DEFAULT_IMAGE), `imported as ${DEFAULT_IMAGE}: ${listed.stdout}`)

    const port = await freePort()
    url = `http://127.0.0.1:${port}`
    container = await startProcess('ctr', [
      '--address', ctrd.socket, '-n', NAMESPACE, 'run', '--rm', '--net-host', '--snapshotter', ctrd.snapshotter,
      // Only FLOTILLA_* environment configures it; /tmp is the image's writable (1777) dir.
      '--env', `FLOTILLA_LISTEN=127.0.0.1:${port}`, '--env', 'FLOTILLA_DATA_DIR=/tmp/data',
      DEFAULT_IMAGE, CONTAINER,
    ], {
      name: 'ctr run flotilla',
      readyTimeoutMs: 60_000,
      readyIntervalMs: 200,
      readyCheck: async () => {
        try {
          return (await fetch(`${url}/v2/`, { signal: AbortSignal.timeout(2000) })).status === 200
        } catch {
          return false
        }
      },
    })

    const v2 = await fetch(`${url}/v2/`, { signal: AbortSignal.timeout(10_000) })
    assert.equal(v2.status, 200)
    assert.equal(v2.headers.get('docker-distribution-api-version'), 'registry/2.0')
    await v2.arrayBuffer()

    const status = await fetch(`${url}/status.json`, { signal: AbortSignal.timeout(10_000) })
    const statusText = await status.text()
    assert.equal(status.status, 200, statusText)
    assert.match(status.headers.get('content-type') ?? '', /^application\/json/)
    const body = JSON.parse(statusText) as { node?: { version?: unknown, address?: unknown } }
    assert.equal(body.node?.version, FLOTILLA_VERSION)

    // The task's init process is flotilla's Node, and it runs as the image's user, not root.
    const tasks = await ctrd.ctr(['tasks', 'ls'], { timeoutMs: 10_000 })
    const row = tasks.stdout.split('\n').find((line) => line.startsWith(`${CONTAINER} `))
    const pid = row?.trim().split(/\s+/)[1]
    assert.ok(pid !== undefined && /^\d+$/.test(pid), `task pid from ctr tasks ls:\n${tasks.stdout}`)
    const procStatus = await readFile(`/proc/${pid}/status`, 'utf8')
    assert.match(procStatus, new RegExp(`^Uid:\\s+${APP_UID}\\s+${APP_UID}\\s+${APP_UID}\\s+${APP_UID}$`, 'm'))
    assert.match(procStatus, new RegExp(`^Gid:\\s+${APP_UID}\\s`, 'm'))
    const cmdline = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0').filter(Boolean)
    assert.deepEqual(cmdline, ['/usr/local/bin/node', '/app/dist/cli/main.js', 'serve'])

    // `flotilla …` works inside the container too (the wrapper on the PATH, for `kubectl exec`).
    const exec = await ctrd.ctr(['tasks', 'exec', '--exec-id', 'version', CONTAINER, 'flotilla', '--version'], { timeoutMs: 30_000 })
    assert.equal(exec.code, 0, exec.stderr)
    assert.equal(exec.stdout.trim(), FLOTILLA_VERSION)

    // A clean stop: SIGTERM to the task, flotilla exits, `ctr run --rm` returns and removes the container.
    const killed = await ctrd.ctr(['tasks', 'kill', '-s', 'SIGTERM', CONTAINER], { timeoutMs: 10_000 })
    assert.equal(killed.code, 0, killed.stderr)
    let timer: NodeJS.Timeout | undefined
    const exit = await Promise.race([container.exited, new Promise<undefined>((resolve) => { timer = setTimeout(resolve, 30_000, undefined) })])
    clearTimeout(timer)
    assert.ok(exit !== undefined, `ctr run returned within 30 s of SIGTERM; output:\n${container.output()}`)
    await waitFor(async () => !(await ctrd?.ctr(['containers', 'ls', '-q'], { timeoutMs: 5000 }))?.stdout.includes(CONTAINER), {
      timeoutMs: 10_000,
      what: 'the container to be removed (--rm)',
    })
    const leftovers = await runCommand('sh', ['-c', `ls ${join(ctrd.state, 'io.containerd.runtime.v2.task', NAMESPACE)} 2>/dev/null || true`], { timeoutMs: 5000 })
    assert.equal(leftovers.stdout.trim(), '', 'no task state left')
  })
})
