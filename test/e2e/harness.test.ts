// Proves the e2e harness itself against the real tools, with no flotilla involved: Distribution,
// umoci-built multi-arch image, skopeo, containerd (ctr + hosts.toml) and the counting proxy.
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { readdir, readFile, stat } from 'node:fs/promises'
import { connect } from 'node:net'
import { join } from 'node:path'
import { startContainerd, writeHostsToml, type Containerd } from '../helpers/containerd.js'
import { startCountingProxy, type CountingProxy } from '../helpers/counting-proxy.js'
import { startDistribution, type Distribution } from '../helpers/distribution.js'
import { skopeoCopy, skopeoInspect } from '../helpers/skopeo.js'
import { makeTempDir, type TempDir } from '../helpers/temp-dir.js'
import { buildTestImage, hostManifest, pushTestImage, type TestImage } from '../helpers/test-image.js'

const REPO = 'harness/busybox'

async function sha256File (path: string): Promise<string> {
  const hash = createHash('sha256')
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer)
  return `sha256:${hash.digest('hex')}`
}

/** The error code of a fresh TCP connect to 127.0.0.1:port, or 'connected'. */
async function connectError (port: number): Promise<string> {
  return await new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1' })
    socket.setTimeout(5000, () => { socket.destroy(); resolve('ETIMEDOUT') })
    socket.once('connect', () => { socket.destroy(); resolve('connected') })
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message))
  })
}

async function fetchAndHash (url: string): Promise<{ status: number, digest: string, size: number }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(30_000) })
  const hash = createHash('sha256')
  let size = 0
  if (res.body !== null) {
    for await (const chunk of res.body) {
      hash.update(chunk as Uint8Array)
      size += (chunk as Uint8Array).length
    }
  }
  return { status: res.status, digest: `sha256:${hash.digest('hex')}`, size }
}

void describe('e2e harness (no flotilla)', () => {
  const cleanups: Array<() => Promise<void>> = []
  let work: TempDir
  let registry: Distribution
  let image: TestImage
  let ref: string

  before(async () => {
    work = await makeTempDir('harness')
    cleanups.push(() => work.cleanup())
    const [startedRegistry, builtImage] = await Promise.all([
      startDistribution(),
      buildTestImage({ workDir: work.path, largeLayerMiB: 24 }),
    ])
    registry = startedRegistry
    cleanups.push(() => registry.stop())
    image = builtImage
    ref = await pushTestImage(image.layoutDir, registry.host, REPO, image.tag)
  })

  after(async () => {
    const errors: unknown[] = []
    for (const cleanup of cleanups.reverse()) await cleanup().catch((err: unknown) => errors.push(err))
    if (errors.length > 0) throw new AggregateError(errors, 'harness teardown failed')
  })

  void test('the built layout is a two-platform OCI index sharing its layers', () => {
    assert.deepEqual(image.manifests.map((m) => `${m.platform.os}/${m.platform.architecture}`), ['linux/amd64', 'linux/arm64'])
    const [amd64, arm64] = image.manifests
    assert.ok(amd64 !== undefined && arm64 !== undefined)
    assert.notEqual(amd64.configDigest, arm64.configDigest)
    assert.deepEqual(amd64.layers, arm64.layers)
    assert.ok(image.largeLayerSize >= 24 * 1024 * 1024, `large layer is ${image.largeLayerSize} bytes`)
  })

  void test('(a) skopeo copies the pushed image back with identical digests', async () => {
    const rawIndex = await skopeoInspect(`docker://${ref}`, { raw: true })
    assert.equal(`sha256:${createHash('sha256').update(rawIndex).digest('hex')}`, image.indexDigest)

    const copyDir = join(work.path, 'skopeo-copy')
    await skopeoCopy(`docker://${ref}`, `oci:${copyDir}:${image.tag}`, { all: true, preserveDigests: true, timeoutMs: 60_000 })
    const copiedIndex = JSON.parse(await readFile(join(copyDir, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string }> }
    assert.deepEqual(copiedIndex.manifests.map((d) => d.digest), [image.indexDigest])
    const copied = (await readdir(join(copyDir, 'blobs', 'sha256'))).map((hex) => `sha256:${hex}`).sort()
    assert.deepEqual(copied, image.allDigests)
    for (const digest of copied) assert.equal(await sha256File(join(copyDir, 'blobs', 'sha256', digest.slice(7))), digest)
  })

  void describe('containerd', () => {
    let containerd: Containerd

    before(async () => {
      containerd = await startContainerd()
      cleanups.push(() => containerd.stop())
    })

    void test('(b) ctr pulls the local platform straight from Distribution into the content store', async () => {
      await writeHostsToml(containerd.certsDir, registry.host, { server: registry.url, mirrors: [{ url: registry.url }] })
      await containerd.pull(ref)
      const listed = await containerd.ctr(['images', 'ls', '-q'])
      assert.equal(listed.code, 0, listed.stderr)
      assert.ok(listed.stdout.split('\n').includes(ref), listed.stdout)

      const local = hostManifest(image)
      for (const digest of [image.indexDigest, local.digest, local.configDigest, ...local.layers.map((l) => l.digest)]) {
        const path = containerd.blobPath(digest)
        assert.equal((await stat(path)).mode & 0o777, 0o444, path)
        assert.equal(await sha256File(path), digest)
      }
      const other = image.manifests.find((m) => m !== local)
      assert.ok(other !== undefined)
      await assert.rejects(stat(containerd.blobPath(other.configDigest)), { code: 'ENOENT' }, 'only the local platform is fetched')
    })
  })

  void describe('counting proxy', () => {
    let proxy: CountingProxy
    let largePath: string

    before(async () => {
      proxy = await startCountingProxy({ upstreamUrl: registry.url })
      cleanups.push(() => proxy.close())
      largePath = `/v2/${REPO}/blobs/${image.largeLayerDigest}`
    })

    void test('(c) one fetch through the proxy is counted as exactly one GET of the large layer', async () => {
      const got = await fetchAndHash(`${proxy.url}${largePath}`)
      assert.equal(got.status, 200)
      assert.equal(got.digest, image.largeLayerDigest)
      assert.equal(proxy.count(largePath, 'GET'), 1)
      assert.equal(proxy.counts.get(largePath), 1)
      assert.equal(proxy.bytes(largePath), image.largeLayerSize)
      assert.equal(proxy.totalBlobBytes(), image.largeLayerSize)
    })

    void test('modes: corrupt-blobs keeps the length, 503 answers 503, refuse refuses and reopens', async (t) => {
      t.after(() => proxy.setMode('pass'))
      proxy.reset()
      await proxy.setMode('corrupt-blobs')
      const corrupt = await fetchAndHash(`${proxy.url}${largePath}`)
      assert.equal(corrupt.status, 200)
      assert.equal(corrupt.size, image.largeLayerSize)
      assert.notEqual(corrupt.digest, image.largeLayerDigest)

      await proxy.setMode('503')
      assert.equal((await fetchAndHash(`${proxy.url}/v2/`)).status, 503)

      await proxy.setMode('refuse')
      // A raw connect: fetch could reuse a pooled keep-alive socket and report "other side closed".
      assert.equal(await connectError(proxy.port), 'ECONNREFUSED')

      await proxy.setMode('reset')
      await assert.rejects(fetch(`${proxy.url}/v2/`, { signal: AbortSignal.timeout(5000) }))

      await proxy.setMode('pass')
      assert.equal((await fetchAndHash(`${proxy.url}${largePath}`)).digest, image.largeLayerDigest)
      assert.equal(proxy.count(largePath, 'GET'), 2)
    })

    void test('(d) containerd sends a hosts.toml mirror the requests, with ?ns=, one GET per blob', async () => {
      // A second daemon: the first one already holds every blob and would only send a HEAD.
      const fresh = await startContainerd()
      cleanups.push(() => fresh.stop())
      proxy.reset()
      await writeHostsToml(fresh.certsDir, registry.host, {
        server: registry.url,
        mirrors: [{ url: proxy.url, capabilities: ['pull', 'resolve'], dialTimeout: '200ms' }],
      })
      await fresh.pull(ref)
      const seen = proxy.requests.map((r) => `${r.method} ${r.path}${r.search} ${r.status}`).join('\n')
      assert.equal(proxy.count(largePath, 'GET'), 1, seen)
      const layerGet = proxy.requests.find((r) => r.path === largePath)
      assert.equal(layerGet?.search, `?ns=${encodeURIComponent(registry.host)}`)
      assert.equal(proxy.bytes(largePath), image.largeLayerSize)
      assert.equal(await sha256File(fresh.blobPath(image.largeLayerDigest)), image.largeLayerDigest)
    })
  })
})
