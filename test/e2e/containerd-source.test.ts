// ContainerdContentSource, the CRI client and the hosts.toml writer against a real containerd 1.6 and
// Distribution: CRI pulls through a hosts.toml we wrote, the source serves what containerd holds, follows
// deletions through events, and turns a stopped daemon into fast misses.
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Readable } from 'node:stream'
import { after, before, describe, test } from 'node:test'
import { pino } from 'pino'
import { ContainerdClient } from '../../src/containerd/containerd-client.js'
import { ContainerdContentSource } from '../../src/containerd/containerd-content-source.js'
import { CriImageClient } from '../../src/containerd/cri-image-client.js'
import { configureHosts, restoreHosts } from '../../src/containerd/hosts-config.js'
import { parseHostsToml } from '../../src/containerd/hosts-toml.js'
import type { ContentEvent } from '../../src/mirror/content-source.js'
import type { Digest } from '../../src/oci/index.js'
import { checkContainerdWiring } from '../../src/roles/check-containerd-wiring.js'
import { startContainerd, type Containerd } from '../helpers/containerd.js'
import { startCountingProxy, type CountingProxy } from '../helpers/counting-proxy.js'
import { startDistribution, type Distribution } from '../helpers/distribution.js'
import { freePort } from '../helpers/free-port.js'
import { makeTempDir, type TempDir } from '../helpers/temp-dir.js'
import { OCI_INDEX, OCI_MANIFEST, buildTestImage, hostManifest, pushTestImage, type TestImage } from '../helpers/test-image.js'
import { waitFor } from '../helpers/wait-for.js'

const REPO = 'test/img'
const TAG = 'v1'
const logger = pino({ level: process.env.FLOTILLA_TEST_LOG ?? 'silent' })

async function readAll (stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of stream) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks)
}

function sha256 (bytes: Buffer): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`
}

void describe('containerd content source (real containerd 1.6)', { timeout: 180_000 }, () => {
  const cleanups: Array<() => Promise<void>> = []
  let work: TempDir
  let registry: Distribution
  let proxy: CountingProxy
  let containerd: Containerd
  let cri: CriImageClient
  let image: TestImage
  let ref: string
  /** The registry's bytes for every digest of the host platform's image. */
  const registryBytes = new Map<string, Buffer>()

  async function fetchFromRegistry (digest: string, isManifest: boolean): Promise<Buffer> {
    const kind = isManifest ? 'manifests' : 'blobs'
    const res = await fetch(`${registry.url}/v2/${REPO}/${kind}/${digest}`, {
      headers: { accept: `${OCI_INDEX}, ${OCI_MANIFEST}` },
      signal: AbortSignal.timeout(10_000),
    })
    assert.equal(res.status, 200, `GET ${kind}/${digest}`)
    const bytes = Buffer.from(await res.arrayBuffer())
    assert.equal(sha256(bytes), digest)
    return bytes
  }

  before(async () => {
    work = await makeTempDir('containerd-source')
    cleanups.push(() => work.cleanup())
    const [startedRegistry, builtImage] = await Promise.all([
      startDistribution(),
      buildTestImage({ workDir: work.path, largeLayerMiB: 8, tag: TAG }),
    ])
    registry = startedRegistry
    cleanups.push(() => registry.stop())
    image = builtImage
    ref = await pushTestImage(image.layoutDir, registry.host, REPO, TAG)
    proxy = await startCountingProxy({ upstreamUrl: registry.url })
    cleanups.push(() => proxy.close())
    containerd = await startContainerd()
    cleanups.push(() => containerd.stop())
    cri = new CriImageClient({ socket: containerd.socket, callTimeoutMs: 5000 })
    cleanups.push(async () => { cri.close() })
    const m = hostManifest(image)
    registryBytes.set(image.indexDigest, await fetchFromRegistry(image.indexDigest, true))
    registryBytes.set(m.digest, await fetchFromRegistry(m.digest, true))
    for (const d of [m.configDigest, ...m.layers.map((l) => l.digest)]) registryBytes.set(d, await fetchFromRegistry(d, false))
  })

  after(async () => {
    const errors: unknown[] = []
    for (const cleanup of cleanups.reverse()) await cleanup().catch((err: unknown) => errors.push(err))
    if (errors.length > 0) throw new AggregateError(errors, 'teardown failed')
  })

  void test('configureHosts over an existing custom file: CRI pulls through the agent first; restore gives the file back', async () => {
    const dir = join(containerd.certsDir, registry.host)
    await mkdir(dir, { recursive: true })
    const deadMirror = `http://127.0.0.1:${await freePort()}`
    const original = `# site config\nserver = "${registry.url}"\n\n[host."${deadMirror}"]\n  capabilities = ["pull", "resolve"]\n  skip_verify = true\n`
    await writeFile(join(dir, 'hosts.toml'), original)

    const [configured] = await configureHosts({ certsDir: containerd.certsDir, mirrorUrl: proxy.url, registries: [registry.host] })
    assert.equal(configured?.hasOriginal, true)
    const written = parseHostsToml(await readFile(join(dir, 'hosts.toml'), 'utf8'))
    assert.equal(written.server, registry.url)
    assert.deepEqual(written.hosts.map(([url]) => url), [proxy.url, deadMirror])
    const again = await configureHosts({ certsDir: containerd.certsDir, mirrorUrl: proxy.url, registries: [registry.host] })
    assert.equal(again[0]?.action, 'unchanged')

    const checks = await checkContainerdWiring({ socket: containerd.socket, certsDir: containerd.certsDir, mirrorUrl: proxy.url, registries: [registry.host] })
    assert.deepEqual(checks.filter((c) => !c.ok), [], JSON.stringify(checks, null, 2))
    assert.deepEqual(checks.map((c) => c.check), ['containerd', 'cri config_path', `hosts.toml ${registry.host}`, 'agent'])

    proxy.reset()
    const imageId = await cri.pullImage(ref, { timeoutMs: 60_000 })
    assert.equal(imageId, hostManifest(image).configDigest)
    const manifestRequests = proxy.requests.filter((r) => r.path === `/v2/${REPO}/manifests/${TAG}`)
    assert.ok(manifestRequests.length >= 1, 'containerd asked the agent first')
    assert.ok(manifestRequests.every((r) => r.search === `?ns=${encodeURIComponent(registry.host)}` || r.search === `?ns=${registry.host}`), JSON.stringify(manifestRequests.map((r) => r.search)))
    assert.ok(proxy.count(`/v2/${REPO}/blobs/${image.largeLayerDigest}`) >= 1)
    const status = await cri.imageStatus(ref)
    assert.deepEqual(status?.repoTags, [ref])

    const restored = await restoreHosts({ certsDir: containerd.certsDir, registries: [registry.host] })
    assert.deepEqual(restored.map((r) => r.action), ['restored'])
    assert.equal(await readFile(join(dir, 'hosts.toml'), 'utf8'), original)
  })

  void describe('ContainerdContentSource', () => {
    let viaFile: ContainerdContentSource
    let viaGrpc: ContainerdContentSource
    const events: ContentEvent[] = []

    before(async () => {
      const fileClient = new ContainerdClient({ socket: containerd.socket, namespace: 'k8s.io' })
      const grpcClient = new ContainerdClient({ socket: containerd.socket, namespace: 'k8s.io' })
      viaFile = new ContainerdContentSource({ client: fileClient, contentDir: containerd.contentDir, logger })
      viaGrpc = new ContainerdContentSource({ client: grpcClient, logger, resubscribeBackoffMs: { initial: 50, max: 500 } })
      cleanups.push(async () => { fileClient.close() }, async () => { grpcClient.close() }, () => viaFile.close(), () => viaGrpc.close())
      viaGrpc.watch((e) => events.push(e))
      await Promise.all([viaFile.start(), viaGrpc.start()])
    })

    void test('resolves the tag CRI pulled to the index descriptor', async () => {
      assert.equal(viaGrpc.synced, true)
      const expected = { digest: image.indexDigest, mediaType: OCI_INDEX, size: image.indexSize }
      assert.deepEqual(await viaGrpc.resolveTag(registry.host, REPO, TAG), expected)
      assert.deepEqual(await viaFile.resolveTag(registry.host, REPO, TAG), expected)
      assert.equal(await viaGrpc.resolveTag(registry.host, REPO, 'nope'), undefined)
      assert.ok(events.some((e) => e.type === 'tag-set' && e.tag === TAG && e.digest === image.indexDigest))
    })

    void test('stats and reads every blob, whole and ranged, file path and gRPC path, bytes equal to the registry\'s', async () => {
      for (const [digest, bytes] of registryBytes) {
        for (const source of [viaFile, viaGrpc]) {
          const { knownIn, ...info } = await source.stat(digest as Digest) ?? {}
          assert.deepEqual(info, { digest, size: bytes.length })
          // containerd's source labels (the registry's host, without its port): where its images hold the blob.
          assert.ok(knownIn?.includes(`${registry.host.replace(/:\d+$/, '')}/${REPO}`), `${digest} known in ${JSON.stringify(knownIn)}`)
          const whole = await source.open(digest as Digest)
          assert.ok(whole !== undefined, digest)
          assert.ok((await readAll(whole)).equals(bytes), `whole ${digest}`)
          const start = Math.floor(bytes.length / 3)
          const end = Math.min(bytes.length - 1, start + (1 << 20) + 12_345)
          const part = await source.open(digest as Digest, { start, end })
          assert.ok(part !== undefined)
          assert.ok((await readAll(part)).equals(bytes.subarray(start, end + 1)), `range ${start}-${end} of ${digest}`)
        }
      }
      // The other platform's config was never fetched: a miss even though the registry has it.
      const other = image.manifests.find((m) => m.digest !== hostManifest(image).digest)
      assert.ok(other !== undefined)
      assert.equal(await viaGrpc.stat(other.configDigest as Digest), undefined)
      assert.equal(await viaFile.open(other.configDigest as Digest), undefined)
    })

    void test('content metadata is per namespace: a blob on disk for k8s.io is a miss in "default"', async () => {
      const client = new ContainerdClient({ socket: containerd.socket, namespace: 'default' })
      const elsewhere = new ContainerdContentSource({ client, contentDir: containerd.contentDir, logger })
      try {
        assert.equal(await elsewhere.stat(image.largeLayerDigest as Digest), undefined)
        assert.equal(await elsewhere.open(image.largeLayerDigest as Digest), undefined)
        assert.equal(await elsewhere.resolveTag(registry.host, REPO, TAG), undefined)
      } finally {
        await elsewhere.close()
        client.close()
      }
    })

    void test('deleting the image with ctr removes the tag (events, no restart)', async () => {
      const removed = await containerd.ctr(['images', 'rm', ref], { timeoutMs: 10_000 })
      assert.equal(removed.code, 0, removed.stderr)
      await waitFor(async () => (await viaGrpc.resolveTag(registry.host, REPO, TAG)) === undefined, { timeoutMs: 5000, intervalMs: 20, what: 'tag removal via events' })
      assert.equal(viaGrpc.synced, true, 'answered from the event-synced index')
      assert.ok(events.some((e) => e.type === 'tag-removed' && e.tag === TAG))
      await waitFor(async () => (await viaFile.resolveTag(registry.host, REPO, TAG)) === undefined, { timeoutMs: 5000, intervalMs: 20, what: 'second source' })
      // And back: a new pull is seen the same way.
      await cri.pullImage(ref, { timeoutMs: 60_000 })
      await waitFor(async () => (await viaGrpc.resolveTag(registry.host, REPO, TAG))?.digest === image.indexDigest, { timeoutMs: 5000, intervalMs: 20, what: 'tag back via events' })
    })

    void test('a stopped containerd turns every call into a fast miss', async () => {
      await containerd.process.stop('SIGTERM', 10_000)
      await waitFor(() => !viaGrpc.synced && !viaFile.synced, { timeoutMs: 2000, intervalMs: 10, what: 'event streams to drop' })
      const started = Date.now()
      for (const source of [viaGrpc, viaFile]) {
        assert.equal(await source.resolveTag(registry.host, REPO, TAG), undefined)
        assert.equal(await source.stat(image.largeLayerDigest as Digest), undefined)
        assert.equal(await source.open(image.largeLayerDigest as Digest), undefined)
      }
      const elapsed = Date.now() - started
      assert.ok(elapsed < 2000, `misses took ${elapsed} ms`)
    })
  })
})
