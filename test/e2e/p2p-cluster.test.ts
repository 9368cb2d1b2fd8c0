// Issue 4 end to end: agents in their own network namespaces (joined by a bridge in a namespace of ours),
// the upstream Distribution in another with its link capped by tc tbf; skopeo pulls on each node.
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { cp, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { generateClusterKey } from '../../src/p2p/cluster-key.js'
import { startProcess, type ProcessHandle } from '../helpers/child-process.js'
import { CLI_ENTRY, sumMetric } from '../helpers/flotilla-agent.js'
import { createNetnsCluster, type NetnsCluster, type NetnsHost } from '../helpers/netns-cluster.js'
import { pushFromNetns, startNetnsRegistry } from '../helpers/netns-registry.js'
import { makeTempDir, type TempDir } from '../helpers/temp-dir.js'
import { buildTestImage, type TestImage } from '../helpers/test-image.js'
import { waitFor } from '../helpers/wait-for.js'

const REPO = 'p2p/busybox'
const NODES = ['up', 'a0', 'a1', 'a2', 'a3', 'a4', 'a5', 'bad'] as const

interface Agent { host: NetnsHost, proc: ProcessHandle, dataDir: string }

void describe('peer to peer across network namespaces (issue 4)', { timeout: 300_000 }, () => {
  let work: TempDir
  let cluster: NetnsCluster
  let image: TestImage
  let upstream: ProcessHandle | undefined
  let upHost: string
  let accessLog: string
  let keyFile: string
  const agents = new Map<string, Agent>()
  const host = (name: typeof NODES[number]): NetnsHost => cluster.host(name)

  async function startUpstream (): Promise<void> {
    upstream = await startNetnsRegistry({ cluster, host: host('up'), dir: work.path, addr: upHost, logFile: accessLog, accessLog: true, deleteEnabled: true })
  }

  async function startAgent (name: typeof NODES[number], opts: { key?: string } = {}): Promise<Agent> {
    const h = host(name)
    const dataDir = join(work.path, `data-${name}`)
    const bootstrap = ['a0', 'a1', 'a2'].map((n) => `/ip4/${host(n as 'a0').ip}/tcp/5001`)
    const [cmd, args] = cluster.wrap(h, process.execPath, ['--import', 'tsx', CLI_ENTRY, 'serve',
      '--listen', '0.0.0.0:5000', '--peer-address', `${h.ip}:5000`, '--data-dir', dataDir,
      '--p2p-listen', `/ip4/${h.ip}/tcp/5001`, ...bootstrap.flatMap((b) => ['--bootstrap', b]),
      '--cluster-key-file', opts.key ?? keyFile, '--registry', `${upHost}=http://${upHost}`, '--default-registry', upHost,
      '--zone', name === 'a0' || name === 'a1' ? 'z1' : 'z2', '--log-level', process.env.FLOTILLA_TEST_LOG_LEVEL ?? 'info',
      // owners stream a blob to one peer and send the others on to it: the simultaneous pull exercises the relay
      '--owner-fanout', '1'])
    const proc = await startProcess(cmd, args, {
      name: `agent-${name}`, logFile: join(work.path, `agent-${name}.log`), readyTimeoutMs: 40_000,
      readyCheck: async () => (await h.exec('curl', ['-sf', '-o', '/dev/null', 'http://127.0.0.1:5000/healthz'], 5000)).code === 0,
    })
    const agent = { host: h, proc, dataDir }
    agents.set(name, agent)
    return agent
  }

  async function metrics (name: typeof NODES[number]): Promise<string> {
    const r = await host(name).exec('curl', ['-sf', 'http://127.0.0.1:5000/metrics'], 10_000)
    return r.stdout
  }

  async function skopeoPull (name: typeof NODES[number], dest: string): Promise<void> {
    const r = await host(name).exec('skopeo', ['--insecure-policy', 'copy', '--quiet', '--all', '--preserve-digests', '--src-tls-verify=false',
      `docker://127.0.0.1:5000/${REPO}:${image.tag}`, `dir:${dest}`], 180_000)
    assert.equal(r.code, 0, `${name}: skopeo failed: ${r.stderr}`)
  }

  async function verifyDir (dir: string): Promise<void> {
    for (const d of image.allBlobDigests) {
      const bytes = await readFile(join(dir, d.slice(7)))
      assert.equal(`sha256:${createHash('sha256').update(bytes).digest('hex')}`, d)
    }
  }

  /** Blob bytes Distribution served, by client address, from its access log. */
  async function upstreamBlobBytes (): Promise<Map<string, number>> {
    const text = await readFile(accessLog, 'utf8').catch(() => '')
    const byClient = new Map<string, number>()
    for (const line of text.split('\n')) {
      const m = /^(\S+) .*"GET (\S+) HTTP\/[\d.]+" (\d{3}) (\d+)/.exec(line)
      if (m === null || !(m[2] ?? '').includes('/blobs/')) continue
      byClient.set(m[1] ?? '', (byClient.get(m[1] ?? '') ?? 0) + Number(m[4]))
    }
    return byClient
  }

  before(async () => {
    work = await makeTempDir('p2p')
    accessLog = join(work.path, 'registry.log')
    keyFile = join(work.path, 'cluster.key')
    await writeFile(keyFile, generateClusterKey(), { mode: 0o600 })
    ;[cluster, image] = await Promise.all([createNetnsCluster(NODES), buildTestImage({ largeLayerMiB: 24 })])
    upHost = `${host('up').ip}:5000`
    await startUpstream()
    await pushFromNetns(host('up'), image.layoutDir, image.tag, `${upHost}/${REPO}:${image.tag}`)
    await writeFile(accessLog, '')
    await cluster.shape(host('up'), '100mbit')
    await Promise.all((['a0', 'a1', 'a2', 'a3'] as const).map(async (n) => await startAgent(n)))
    // Everyone sees everyone before the simultaneous pull, so all agree on each digest's owner.
    await waitFor(async () => {
      const counts = await Promise.all((['a0', 'a1', 'a2', 'a3'] as const).map(async (n) => sumMetric(await metrics(n), 'flotilla_p2p_peers')))
      return counts.every((c) => c >= 3)
    }, { timeoutMs: 30_000, what: 'a full mesh of four agents' })
  })

  after(async () => {
    for (const a of agents.values()) await a.proc.stop('SIGTERM', 10_000)
    await upstream?.stop()
    await cluster?.destroy()
    if (process.env.FLOTILLA_KEEP_LOGS !== undefined) await cp(work.path, process.env.FLOTILLA_KEEP_LOGS, { recursive: true, filter: (s) => !s.includes('/data-') && !s.includes('/pull-') && !s.includes('/registry/') })
    await work?.cleanup()
  })

  test('four agents pull the multi-arch image at once: the upstream serves one copy of the blobs', async () => {
    const started = Date.now()
    await Promise.all((['a0', 'a1', 'a2', 'a3'] as const).map(async (n) => await skopeoPull(n, join(work.path, `pull-${n}`))))
    const seconds = (Date.now() - started) / 1000
    for (const n of ['a0', 'a1', 'a2', 'a3']) await verifyDir(join(work.path, `pull-${n}`))
    const sizes = new Map<string, number>()
    for (const m of image.manifests) {
      sizes.set(m.configDigest, m.configSize)
      for (const l of m.layers) sizes.set(l.digest, l.size)
    }
    const oneCopy = [...sizes.values()].reduce((a, b) => a + b, 0)
    const served = [...(await upstreamBlobBytes()).values()].reduce((a, b) => a + b, 0)
    const relayed = (await Promise.all((['a0', 'a1', 'a2', 'a3'] as const).map(async (n) => sumMetric(await metrics(n), 'flotilla_p2p_owner_redirects_total')))).reduce((a, b) => a + b, 0)
    console.log(`# 4 agents pulled in ${seconds.toFixed(1)} s; upstream blob bytes ${served} for one copy of ${oneCopy}; ${relayed} asker(s) sent on by an owner`)
    assert.equal(served, oneCopy)
  })

  test('upstream stopped and the first fetcher killed: a new node still pulls by tag through its agent', async () => {
    const byClient = await upstreamBlobBytes()
    const first = [...byClient.entries()].sort((a, b) => b[1] - a[1])[0]?.[0]
    const victim = [...agents.entries()].find(([, a]) => a.host.ip === first)
    assert.ok(victim !== undefined, `no agent has address ${first}`)
    await victim[1].proc.kill9()
    agents.delete(victim[0])
    await upstream?.stop()
    await startAgent('a4')
    await waitFor(async () => sumMetric(await metrics('a4'), 'flotilla_p2p_peers') >= 2, { timeoutMs: 30_000, what: 'a4 joined' })
    await skopeoPull('a4', join(work.path, 'pull-a4'))
    await verifyDir(join(work.path, 'pull-a4'))
    const m = await metrics('a4')
    assert.equal(sumMetric(m, 'flotilla_upstream_bytes_total'), 0)
    assert.ok(sumMetric(m, 'flotilla_requests_total', { result: 'peer' }) + sumMetric(m, 'flotilla_requests_total', { result: 'upstream' }) > 0)
  })

  test('a peer killed while serving a large blob: the client still gets the whole verified blob', async () => {
    // Slow every holder down so the transfer is long enough to interrupt.
    const holders = [...agents.entries()].filter(([n]) => n !== 'a5')
    for (const [, a] of holders) await cluster.shape(a.host, '40mbit')
    const a5 = await startAgent('a5')
    await waitFor(async () => sumMetric(await metrics('a5'), 'flotilla_p2p_peers') >= holders.length, { timeoutMs: 30_000, what: 'a5 joined' })
    const servedBefore = new Map(await Promise.all(holders.map(async ([n]) => [n, sumMetric(await metrics(n as 'a0'), 'flotilla_served_bytes_total')] as const)))
    const out = join(work.path, 'large.blob')
    const pull = a5.host.exec('curl', ['-sf', '-o', out, '-w', '%{http_code} %{size_download}', `http://127.0.0.1:5000/v2/${REPO}/blobs/${image.largeLayerDigest}`], 120_000)
    let serving: string | undefined
    await waitFor(async () => {
      for (const [n] of holders) {
        const now = sumMetric(await metrics(n as 'a0'), 'flotilla_served_bytes_total')
        if (now - (servedBefore.get(n) ?? 0) > 2 * 1024 * 1024) { serving = n; return true }
      }
      return false
    }, { timeoutMs: 30_000, intervalMs: 100, what: 'a holder serving the large layer' })
    assert.ok(serving !== undefined)
    await agents.get(serving)?.proc.kill9()
    agents.delete(serving)
    const r = await pull
    assert.equal(r.code, 0, `curl failed: ${r.stderr} ${r.stdout}`)
    const bytes = await readFile(out)
    assert.equal(bytes.byteLength, image.largeLayerSize)
    assert.equal(`sha256:${createHash('sha256').update(bytes).digest('hex')}`, image.largeLayerDigest)
    for (const [, a] of agents) await a.host.exec('tc', ['qdisc', 'del', 'dev', 'eth0', 'root'], 10_000)
  })

  test('an agent with the wrong cluster key cannot join or fetch; peer requests without credentials are refused', async () => {
    const badKey = join(work.path, 'bad.key')
    await writeFile(badKey, generateClusterKey(), { mode: 0o600 })
    await startAgent('bad', { key: badKey })
    const target = [...agents.values()].find((a) => a.host.ns !== host('bad').ns && a.host.ns !== host('a5').ns) ?? agents.get('a5')
    assert.ok(target !== undefined)
    const blobUrl = `http://${target.host.ip}:5000/v2/${REPO}/blobs/${image.largeLayerDigest}`
    const noCreds = await host('bad').exec('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', blobUrl], 10_000)
    assert.equal(noCreds.stdout, '401')
    const forged = await host('bad').exec('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '-H', 'x-flotilla-peer: local Zm9yZ2Vk', blobUrl], 10_000)
    assert.equal(forged.stdout, '401')
    // Joined nobody, so it cannot find the content (and the upstream is gone): a fast miss, not a stall.
    assert.equal(sumMetric(await metrics('bad'), 'flotilla_p2p_peers'), 0)
    const viaBad = await host('bad').exec('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', `http://127.0.0.1:5000/v2/${REPO}/blobs/${image.largeLayerDigest}`], 30_000)
    assert.notEqual(viaBad.stdout, '200')
    assert.equal(sumMetric(await metrics('bad'), 'flotilla_p2p_peers'), 0)
  })

  test('miss latency: a digest nobody holds and the upstream lacks is a fast 404 (p99 recorded)', async () => {
    if (upstream?.isRunning !== true) await startUpstream()
    const node = [...agents.values()][0]
    assert.ok(node !== undefined)
    const script = `
      const lat = []
      // the first 20 warm up connections to the owners and the JIT; the next 200 are recorded
      for (let i = -20; i < 200; i++) {
        const d = 'sha256:' + [...crypto.getRandomValues(new Uint8Array(32))].map((b) => b.toString(16).padStart(2, '0')).join('')
        const t = performance.now()
        const r = await fetch('http://127.0.0.1:5000/v2/${REPO}/blobs/' + d)
        await r.arrayBuffer()
        if (r.status !== 404) { console.log(JSON.stringify({ status: r.status })); process.exit(1) }
        if (i >= 0) lat.push(performance.now() - t)
      }
      lat.sort((a, b) => a - b)
      const q = (p) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))]
      console.log(JSON.stringify({ p50: q(0.5), p90: q(0.9), p99: q(0.99), max: lat[lat.length - 1] }))`
    const r = await node.host.exec(process.execPath, ['--input-type=module', '-e', script], 60_000)
    assert.equal(r.code, 0, r.stdout + r.stderr)
    const stats = JSON.parse(r.stdout.trim()) as { p50: number, p90: number, p99: number, max: number }
    console.log(`# miss latency over 200 requests: p50 ${stats.p50.toFixed(1)} ms, p90 ${stats.p90.toFixed(1)} ms, p99 ${stats.p99.toFixed(1)} ms, max ${stats.max.toFixed(1)} ms`)
    // The target is p99 < 20 ms: bench/p2p-miss.ts measures it (BENCHMARKS.md). Agents here run under tsx on
    // two shared cores next to the test runner, so this bound only catches stalls and gross regressions.
    assert.ok(stats.p99 < 150, `p99 ${stats.p99} ms`)
    assert.ok(stats.p50 < 40, `p50 ${stats.p50} ms`)
  })
})
