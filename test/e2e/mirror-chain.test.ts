// Issue 14, chaining: node agents list a central mirror before a registry's endpoint. Real parts: Debian's
// Distribution as the upstream (behind a counting proxy), a central `flotilla serve --role mirror` over HTTPS
// with a test CA and htpasswd, Distribution's own proxy mode as another central mirror, agents from source,
// skopeo as the client.
import assert from 'node:assert/strict'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { startContainerd } from '../helpers/containerd.js'
import { startCountingProxy, type CountingProxy } from '../helpers/counting-proxy.js'
import { startDistribution, startDistributionProxy, type Distribution } from '../helpers/distribution.js'
import { startFlotilla, sumMetric, type FlotillaAgent } from '../helpers/flotilla-agent.js'
import { freePort } from '../helpers/free-port.js'
import { runCommandChecked } from '../helpers/run-command.js'
import { makeTempDir, type TempDir } from '../helpers/temp-dir.js'
import { buildTestImage, hostArchitecture, hostManifest, pushTestImage, type TestImage } from '../helpers/test-image.js'

const REPO = 'chain/app'

void describe('agents chain to a central mirror (issue 14)', () => {
  let work: TempDir
  let registry: Distribution
  let upstream: CountingProxy
  let image: TestImage
  let central: FlotillaAgent
  let centralMetrics: string
  let caFile: string
  const agents: FlotillaAgent[] = []

  /** A fresh agent (empty store) whose registry lists `mirrors` before the upstream. */
  const agent = async (name: string, mirrors: Array<{ url: string, ca?: string }>, password = 's3cret'): Promise<FlotillaAgent> => {
    const docker = join(work.path, `${name}-docker.json`)
    await writeFile(docker, JSON.stringify({ auths: { [new URL(central.url).host]: { auth: Buffer.from(`alice:${password}`).toString('base64') } } }))
    const configYaml = `defaultRegistry: "${upstream.host}"\ncredentialsFile: "${docker}"\nupstream:\n  connectTimeout: 1s\nregistries:\n  "${upstream.host}":\n    endpoint: "${upstream.url}"\n` +
      `    mirrors:\n${mirrors.map((m) => `      - url: "${m.url}"\n${m.ca === undefined ? '' : `        ca: "${m.ca}"\n`}`).join('')}`
    const a = await startFlotilla({ configYaml, dataDir: join(work.path, name), logLevel: 'warn' })
    agents.push(a)
    return a
  }

  /** skopeo pulls the host platform's image through the agent; returns the wall time in ms. */
  const pull = async (a: FlotillaAgent, out: string): Promise<number> => {
    const started = Date.now()
    await runCommandChecked('skopeo', ['--override-arch', hostArchitecture(), 'copy', '--src-tls-verify=false', `docker://${a.host}/${REPO}:${image.tag}`, `oci:${join(work.path, out)}:x`], { timeoutMs: 90_000 })
    return Date.now() - started
  }

  const blobGets = (): Map<string, number> => {
    const counts = new Map<string, number>()
    for (const r of upstream.requests) if (r.method === 'GET' && r.path.includes('/blobs/') && r.status === 200) counts.set(r.path, (counts.get(r.path) ?? 0) + 1)
    return counts
  }

  before(async () => {
    work = await makeTempDir('mirror-chain')
    ;[registry, image] = await Promise.all([startDistribution(), buildTestImage({ largeLayerMiB: 6 })])
    await pushTestImage(image.layoutDir, registry.host, REPO, image.tag)
    upstream = await startCountingProxy({ upstreamUrl: registry.url })
    const cert = join(work.path, 'tls.crt')
    const key = join(work.path, 'tls.key')
    await runCommandChecked('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1',
      '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', key, '-out', cert], { timeoutMs: 30_000 })
    caFile = cert
    const htpasswd = join(work.path, 'htpasswd')
    await runCommandChecked('htpasswd', ['-cbB', htpasswd, 'alice', 's3cret'], { timeoutMs: 10_000 })
    const metricsPort = await freePort()
    centralMetrics = `http://127.0.0.1:${metricsPort}/metrics`
    central = await startFlotilla({
      registries: { [upstream.host]: upstream.url }, tls: true, readyTimeoutMs: 30_000, dataDir: join(work.path, 'central'),
      args: ['--role', 'mirror', '--htpasswd', htpasswd, '--tls-cert', cert, '--tls-key', key, '--metrics-listen', `127.0.0.1:${metricsPort}`],
    })
  })

  after(async () => {
    for (const a of agents) await a.stop().catch(() => {})
    await central?.stop().catch(() => {})
    await upstream?.close()
    await registry?.stop()
    await work?.cleanup()
  })

  test('1. a pull through an agent is served through the central mirror, and the upstream sends each blob once', async () => {
    upstream.reset()
    const a = await agent('a1', [{ url: central.url, ca: caFile }])
    await pull(a, 'p1')
    const metrics = await (await fetch(centralMetrics, { signal: AbortSignal.timeout(5000) })).text()
    assert.ok(sumMetric(metrics, 'flotilla_served_bytes_total') >= image.largeLayerSize, 'the central mirror served the layer')
    assert.ok(await a.metric('flotilla_upstream_endpoint_requests_total', { endpoint: central.url, result: 'ok' }) >= 1)
    assert.equal(await a.metric('flotilla_upstream_endpoint_requests_total', { endpoint: 'endpoint' }), 0, 'the agent asked the upstream itself')
    assert.ok(await a.metric('flotilla_upstream_endpoint_bytes_total', { endpoint: central.url }) >= image.largeLayerSize, 'the bytes are counted against the central mirror')
    const host = hostManifest(image)
    for (const d of [host.configDigest, ...host.layers.map((l) => l.digest)]) assert.equal(blobGets().get(`/v2/${REPO}/blobs/${d}`), 1, `${d} fetched upstream once`)
  })

  test('3. upstream stopped, central mirror up: a fresh agent pulls through the central mirror', async () => {
    await upstream.setMode('refuse')
    try {
      await pull(await agent('a3', [{ url: central.url, ca: caFile }]), 'p3')
    } finally {
      await upstream.setMode('pass')
    }
  })

  test('4. wrong password: the agent falls through to the upstream and says why once', async () => {
    upstream.reset()
    const a = await agent('a4', [{ url: central.url, ca: caFile }], 'wrong')
    await pull(a, 'p4')
    assert.ok(await a.metric('flotilla_upstream_endpoint_requests_total', { endpoint: central.url, result: 'failed' }) >= 1)
    assert.ok(blobGets().size >= 2, 'the upstream served the blobs')
    const metrics = await (await fetch(centralMetrics, { signal: AbortSignal.timeout(5000) })).text()
    assert.ok(sumMetric(metrics, 'flotilla_auth_failures_total', { reason: 'wrong-password' }) >= 1)
  })

  test('5. Distribution in proxy mode as the central mirror: chaining works', async () => {
    const proxy = await startDistributionProxy({ remoteUrl: upstream.url })
    try {
      const a = await agent('a5', [{ url: proxy.url }])
      await pull(a, 'p5')
      assert.ok(await a.metric('flotilla_upstream_endpoint_requests_total', { endpoint: proxy.url, result: 'ok' }) >= 1)
    } finally {
      await proxy.stop()
    }
  })

  /** containerd with the central mirror as a host in hosts.toml and the upstream as `server`, no agent. */
  const containerdPull = async (): Promise<{ fromContainerd: number }> => {
    const ctrd = await startContainerd({ namespace: 'k8s.io' })
    try {
      const dir = join(ctrd.certsDir, upstream.host)
      await mkdir(dir, { recursive: true })
      await writeFile(join(dir, 'hosts.toml'), `server = "${upstream.url}"\n\n[host."${central.url}"]\n  capabilities = ["pull", "resolve"]\n  ca = "${caFile}"\n  dial_timeout = "200ms"\n`)
      upstream.reset()
      const r = await ctrd.ctr(['images', 'pull', '--hosts-dir', ctrd.certsDir, '--user', 'alice:s3cret', '--snapshotter', ctrd.snapshotter, `${upstream.host}/${REPO}:${image.tag}`], { timeoutMs: 90_000 })
      assert.equal(r.code, 0, r.stderr)
      return { fromContainerd: upstream.requests.filter((q) => q.path.includes('/blobs/') && String(q.headers['user-agent'] ?? '').startsWith('containerd')).length }
    } finally {
      await ctrd.stop()
    }
  }

  test('6. containerd alone: the central mirror as a hosts.toml host, the upstream as server', async () => {
    const served = async (): Promise<number> => sumMetric(await (await fetch(centralMetrics, { signal: AbortSignal.timeout(5000) })).text(), 'flotilla_served_bytes_total')
    const before = await served()
    const { fromContainerd } = await containerdPull()
    assert.equal(fromContainerd, 0, 'containerd went to the upstream with the central mirror up')
    assert.ok(await served() - before >= image.largeLayerSize, 'the central mirror served containerd the layer')
  })

  test('2. central mirror stopped: a fresh agent pulls from the upstream within the connect bound plus the transfer', async () => {
    await central.stop()
    const a = await agent('a2', [{ url: central.url, ca: caFile }])
    const ms = await pull(a, 'p2')
    assert.ok(ms < 20_000, `the pull took ${ms} ms`)
    assert.ok(await a.metric('flotilla_upstream_endpoint_requests_total', { endpoint: 'endpoint', result: 'ok' }) >= 1)
    // And containerd alone falls back to its `server`.
    const { fromContainerd } = await containerdPull()
    assert.ok(fromContainerd >= 2, 'containerd fetched the blobs from the upstream')
  })
})
