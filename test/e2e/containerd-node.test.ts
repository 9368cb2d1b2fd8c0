// Issue 3 acceptance, with real parts: flotilla serving what one node's containerd (A) holds to another
// containerd (B) while the upstream is down; CRI pulls falling back to the upstream when flotilla is gone;
// `flotilla containerd configure|restore` on a certs.d with the node's own settings; and flotilla following
// containerd A's image deletions and pulls without a restart.
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { CriImageClient } from '../../src/containerd/cri-image-client.js'
import { parseHostsToml } from '../../src/containerd/hosts-toml.js'
import { startContainerd, writeHostsToml, type Containerd } from '../helpers/containerd.js'
import { startDistribution, type Distribution } from '../helpers/distribution.js'
import { flotillaCommand, startFlotilla, type FlotillaAgent } from '../helpers/flotilla-agent.js'
import { freePort } from '../helpers/free-port.js'
import { runCommand, type CommandResult } from '../helpers/run-command.js'
import { skopeoCopy } from '../helpers/skopeo.js'
import { makeTempDir, type TempDir } from '../helpers/temp-dir.js'
import { OCI_INDEX, OCI_MANIFEST, buildTestImage, hostManifest, pushTestImage, type TestImage } from '../helpers/test-image.js'
import { waitFor } from '../helpers/wait-for.js'

const REPO = 'node/busybox'
/** Same image under other names, so each timed CRI pull has to fetch everything from the registry. */
const REPO_DIRECT = 'node/direct'
const REPO_FALLBACK = 'node/fallback'
const SECOND_TAG = 'second'
/** Extra time a CRI pull may spend on a dead flotilla before reaching the upstream. */
const FALLBACK_BUDGET_MS = 1000

function sha256 (bytes: Buffer): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`
}

/** Files in flotilla's own blob store (none: everything must come from containerd A). */
async function storedBlobs (agent: FlotillaAgent): Promise<string[]> {
  try {
    return await readdir(join(agent.dataDir, 'blobs', 'sha256'))
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw err
  }
}

/** Removes every image in the namespace and waits for containerd's garbage collection (content included). */
async function removeAllImages (ctrd: Containerd): Promise<void> {
  const listed = await ctrd.ctr(['images', 'ls', '-q'], { timeoutMs: 10_000 })
  assert.equal(listed.code, 0, listed.stderr)
  const names = listed.stdout.split('\n').filter((n) => n !== '')
  if (names.length === 0) return
  const removed = await ctrd.ctr(['images', 'rm', '--sync', ...names], { timeoutMs: 20_000 })
  assert.equal(removed.code, 0, removed.stderr)
}

/** The host platform's manifest, config and layers are in the content store with the right bytes. */
async function assertImageContent (ctrd: Containerd, image: TestImage): Promise<void> {
  const m = hostManifest(image)
  for (const d of [image.indexDigest, m.digest, m.configDigest, ...m.layers.map((l) => l.digest)]) {
    assert.equal(sha256(await readFile(ctrd.blobPath(d))), d, `containerd's copy of ${d}`)
  }
}

async function isPresent (path: string): Promise<boolean> {
  return await stat(path).then(() => true, () => false)
}

/** `flotilla <args…>` as a child process, bounded. */
async function flotillaCli (args: readonly string[]): Promise<CommandResult> {
  const [cmd, argv] = flotillaCommand(args)
  return await runCommand(cmd, argv, { timeoutMs: 30_000, env: { ...process.env, FLOTILLA_CONFIG: '' } })
}

async function manifestStatus (agent: FlotillaAgent, registryHost: string, repo: string, ref: string): Promise<{ status: number, digest: string }> {
  const res = await fetch(`${agent.url}/v2/${repo}/manifests/${ref}?ns=${encodeURIComponent(registryHost)}`, {
    headers: { accept: `${OCI_INDEX}, ${OCI_MANIFEST}` },
    signal: AbortSignal.timeout(5000),
  })
  const body = Buffer.from(await res.arrayBuffer())
  return { status: res.status, digest: res.status === 200 ? sha256(body) : '' }
}

void describe('flotilla on a containerd node (issue 3)', { timeout: 120_000 }, () => {
  const cleanups: Array<() => Promise<void>> = []
  let work: TempDir
  let registry: Distribution
  let image: TestImage
  let nodeA: Containerd
  let nodeB: Containerd
  let criB: CriImageClient
  let host: string
  let ref: string
  const containerdArgs = (): string[] => ['--containerd-socket', nodeA.socket, '--containerd-namespace', 'k8s.io', '--containerd-content-dir', nodeA.contentDir]

  before(async () => {
    work = await makeTempDir('containerd-node')
    cleanups.push(() => work.cleanup())
    const [startedRegistry, builtImage, a, b] = await Promise.all([
      startDistribution(),
      buildTestImage({ workDir: work.path, largeLayerMiB: 8 }),
      startContainerd(),
      startContainerd(),
    ])
    registry = startedRegistry
    cleanups.push(() => registry.stop())
    nodeA = a
    nodeB = b
    cleanups.push(() => nodeA.stop(), () => nodeB.stop())
    image = builtImage
    host = registry.host
    ref = await pushTestImage(image.layoutDir, host, REPO, image.tag)
    await pushTestImage(image.layoutDir, host, REPO_DIRECT, image.tag)
    await pushTestImage(image.layoutDir, host, REPO_FALLBACK, image.tag)
    criB = new CriImageClient({ socket: nodeB.socket, callTimeoutMs: 5000 })
    cleanups.push(async () => { criB.close() })
  })

  after(async () => {
    const errors: unknown[] = []
    for (const cleanup of cleanups.reverse()) await cleanup().catch((err: unknown) => errors.push(err))
    if (errors.length > 0) throw new AggregateError(errors, 'teardown failed')
  })

  void describe('with the upstream down, B pulls what A holds through flotilla', () => {
    let agent: FlotillaAgent

    before(async () => {
      // A gets the image straight from the upstream (its certs.d is empty): no agent involved.
      await nodeA.pull(ref)
      agent = await startFlotilla({ registries: { [host]: registry.url }, args: containerdArgs(), logLevel: 'warn' })
      cleanups.push(() => agent.stop())
      await registry.kill9()
      // server is the dead upstream: B's pulls can only succeed through flotilla.
      await writeHostsToml(nodeB.certsDir, host, { server: registry.url, mirrors: [{ url: agent.url, dialTimeout: '200ms' }] })
    })

    void test('ctr pull by tag and by digest succeed; flotilla stores nothing and counts hits', async () => {
      await nodeB.pull(ref, { timeoutMs: 60_000 })
      await assertImageContent(nodeB, image)

      await removeAllImages(nodeB)
      assert.equal(await isPresent(nodeB.blobPath(image.largeLayerDigest)), false, 'B dropped the content: the digest pull must fetch it')
      await nodeB.pull(`${host}/${REPO}@${image.indexDigest}`, { timeoutMs: 60_000 })
      await assertImageContent(nodeB, image)

      assert.deepEqual(await storedBlobs(agent), [])
      const hits = await agent.metric('flotilla_requests_total', { registry: host, result: 'hit' })
      const m = hostManifest(image)
      // Per pull at least: the index and manifest (tag/digest), the config and every layer.
      assert.ok(hits >= 2 * (2 + 1 + m.layers.length), `flotilla counted ${hits} hits`)
      assert.equal(await agent.metric('flotilla_requests_total', { registry: host, result: 'error' }), 0)
    })

    void test('CRI PullImage through flotilla, then with flotilla stopped CRI falls back to the upstream at once', async (t) => {
      await removeAllImages(nodeB)
      const requestsBefore = await agent.metric('flotilla_requests_total', { registry: host })
      let started = Date.now()
      const imageId = await criB.pullImage(ref, { timeoutMs: 60_000 })
      const viaAgentMs = Date.now() - started
      assert.equal(imageId, hostManifest(image).configDigest)
      assert.ok(await agent.metric('flotilla_requests_total', { registry: host }) > requestsBefore, 'the CRI pull went through flotilla')
      assert.deepEqual(await storedBlobs(agent), [])

      await registry.restart()
      await agent.stop()

      // One round: a pull with no agent in hosts.toml, then one whose first host is the dead agent.
      const round = async (): Promise<{ directMs: number, fallbackMs: number }> => {
        await removeAllImages(nodeB)
        await writeHostsToml(nodeB.certsDir, host, { server: registry.url, mirrors: [{ url: registry.url }] })
        started = Date.now()
        await criB.pullImage(`${host}/${REPO_DIRECT}:${image.tag}`, { timeoutMs: 30_000 })
        const directMs = Date.now() - started

        await removeAllImages(nodeB)
        await writeHostsToml(nodeB.certsDir, host, { server: registry.url, mirrors: [{ url: agent.url, dialTimeout: '200ms' }] })
        started = Date.now()
        const id = await criB.pullImage(`${host}/${REPO_FALLBACK}:${image.tag}`, { timeoutMs: 30_000 })
        const fallbackMs = Date.now() - started
        assert.equal(id, hostManifest(image).configDigest)
        return { directMs, fallbackMs }
      }
      const rounds = [await round(), await round()]
      await assertImageContent(nodeB, image)
      const directMs = Math.min(...rounds.map((r) => r.directMs))
      const fallbackMs = Math.min(...rounds.map((r) => r.fallbackMs))
      const report = `CRI pull via flotilla ${viaAgentMs} ms; direct ${rounds.map((r) => r.directMs).join('/')} ms; ` +
        `fallback past the stopped agent ${rounds.map((r) => r.fallbackMs).join('/')} ms; extra ${fallbackMs - directMs} ms (budget ${FALLBACK_BUDGET_MS} ms)`
      t.diagnostic(report)
      console.log(`# ${report}`)
      assert.ok(fallbackMs - directMs < FALLBACK_BUDGET_MS, report)
    })
  })

  void describe('flotilla serving only the node (no upstream configured for the registry)', () => {
    // Without a --registry for the upstream's host, everything flotilla answers comes from containerd A:
    // a tag A drops is a 404, not an upstream fetch.
    let agent: FlotillaAgent
    let agentPid: number

    before(async () => {
      if (!registry.process.isRunning) await registry.restart() // when run without the tests above
      agent = await startFlotilla({ args: containerdArgs(), logLevel: 'warn' })
      agentPid = agent.process.pid
      cleanups.push(() => agent.stop())
    })

    void test('`flotilla containerd configure` keeps the node\'s CA and mirror; ctr pulls through flotilla; restore gives the bytes back', async () => {
      const certsDir = join(work.path, 'certs-configure')
      const dir = join(certsDir, host)
      await mkdir(dir, { recursive: true })
      const caPath = join(work.path, 'node-ca.pem')
      // containerd parses every `ca` file before resolving ("unable to load CA cert" on a non-PEM dummy):
      // any valid bundle stands in for the node's private CA.
      await writeFile(caPath, await readFile('/etc/ssl/certs/ca-certificates.crt'))
      const deadServer = `http://127.0.0.1:${await freePort()}`
      const otherMirror = `http://127.0.0.1:${await freePort()}`
      const original = Buffer.from(`# this node's own registry settings\nserver = "${deadServer}"\nca = "${caPath}"\n\n` +
        `[host."${otherMirror}"]\n  capabilities = ["pull", "resolve"]\n  skip_verify = true\n`)
      const hostsToml = join(dir, 'hosts.toml')
      await writeFile(hostsToml, original)

      const configured = await flotillaCli(['containerd', 'configure', '--certs-dir', certsDir, '--mirror', agent.url, '--registry', host])
      assert.equal(configured.code, 0, configured.stderr)
      assert.equal(configured.stdout, `updated ${hostsToml}\n`)
      const again = await flotillaCli(['containerd', 'configure', '--certs-dir', certsDir, '--mirror', agent.url, '--registry', host])
      assert.equal(again.stdout, `unchanged ${hostsToml}\n`)

      await removeAllImages(nodeB)
      const before = await agent.metric('flotilla_requests_total', { registry: host, result: 'hit' })
      await nodeB.pull(ref, { hostsDir: certsDir, timeoutMs: 60_000 })
      await assertImageContent(nodeB, image)
      const hits = await agent.metric('flotilla_requests_total', { registry: host, result: 'hit' })
      assert.ok(hits - before >= 2 + 1 + hostManifest(image).layers.length, `flotilla served ${hits - before} requests`)

      const text = await readFile(hostsToml, 'utf8')
      const parsed = parseHostsToml(text)
      assert.deepEqual(parsed.hosts.map(([url]) => url), [agent.url, otherMirror])
      assert.equal(parsed.server, deadServer)
      assert.equal(parsed.topLevel.ca, caPath)
      assert.equal(parsed.hosts[1]?.[1].skip_verify, true)

      const restored = await flotillaCli(['containerd', 'restore', '--certs-dir', certsDir, '--registry', host])
      assert.equal(restored.code, 0, restored.stderr)
      assert.equal(restored.stdout, `restored ${hostsToml}\n`)
      assert.ok((await readFile(hostsToml)).equals(original), 'the original hosts.toml, byte for byte')
      assert.deepEqual((await readdir(dir)).sort(), ['hosts.toml'])
    })

    void test('an image deleted from A stops being served within 2 s; a newly pulled one is served without a restart', async (t) => {
      assert.equal((await manifestStatus(agent, host, REPO, image.tag)).status, 200)
      const removed = await nodeA.ctr(['images', 'rm', ref], { timeoutMs: 10_000 })
      assert.equal(removed.code, 0, removed.stderr)
      let started = Date.now()
      await waitFor(async () => (await manifestStatus(agent, host, REPO, image.tag)).status === 404, { timeoutMs: 2000, intervalMs: 20, what: 'flotilla to drop the deleted tag' })
      const droppedMs = Date.now() - started

      await skopeoCopy(`oci:${image.layoutDir}:${image.tag}`, `docker://${host}/${REPO}:${SECOND_TAG}`, { all: true, preserveDigests: true })
      assert.equal((await manifestStatus(agent, host, REPO, SECOND_TAG)).status, 404)
      await nodeA.pull(`${host}/${REPO}:${SECOND_TAG}`)
      started = Date.now()
      await waitFor(async () => (await manifestStatus(agent, host, REPO, SECOND_TAG)).digest === image.indexDigest, { timeoutMs: 2000, intervalMs: 20, what: 'flotilla to serve the new tag' })
      const servedMs = Date.now() - started
      t.diagnostic(`deleted tag gone after ${droppedMs} ms; new tag served after ${servedMs} ms`)

      const blob = await fetch(`${agent.url}/v2/${REPO}/blobs/${image.largeLayerDigest}?ns=${encodeURIComponent(host)}`, { signal: AbortSignal.timeout(10_000) })
      assert.equal(blob.status, 200)
      assert.equal(sha256(Buffer.from(await blob.arrayBuffer())), image.largeLayerDigest)
      assert.equal(agent.process.isRunning, true)
      assert.equal(agent.process.pid, agentPid)
      assert.deepEqual(await storedBlobs(agent), [])
    })
  })
})
