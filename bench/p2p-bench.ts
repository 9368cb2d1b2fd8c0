// Time for N agents, each in its own network namespace, to hold a ~200 MB image pulled at the same moment,
// with the upstream Distribution behind a capped link (tc tbf; 100 Mbit/s, the issue's example, and 1 Gbit/s):
// peer-to-peer on (agents find each other with the DHT and route each digest through its rendezvous owner)
// versus every agent going upstream.
//
//   npx tsx bench/p2p-bench.ts [--quick] [--n 2,4,8] [--rates 100mbit,1gbit] [--modes p2p,p2p-send,upstream]
//
// FLOTILLA_BENCH_KEEP_LOGS=DIR copies each run's agent logs (and stores without their blobs) there, and
// FLOTILLA_AGENT_LOG_LEVEL=debug makes the agents log every request: the per-step timings of a rollout.   (needs root, docker-registry, skopeo, umoci, curl, tc)
import { cp, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { generateClusterKey } from '../src/p2p/cluster-key.js'
import { startProcess, type ProcessHandle } from '../test/helpers/child-process.js'
import { sumMetric } from '../test/helpers/flotilla-agent.js'
import { createNetnsCluster, type NetnsCluster, type NetnsHost } from '../test/helpers/netns-cluster.js'
import { makeTempDir } from '../test/helpers/temp-dir.js'
import { OCI_INDEX, OCI_MANIFEST, buildTestImage, hostManifest, type TestImage } from '../test/helpers/test-image.js'
import { waitFor } from '../test/helpers/wait-for.js'
import { curlGet } from './lib-curl.js'
import { assertBuilt, startDistAgent, type DistAgent } from './lib-dist-agent.js'
import { MIB, describeMachine, formatMiB, invocation, markdownTable, renderReport, writeResult } from './lib-report.js'
import { RssPeak, maxRss, readCpuSeconds } from './lib-rss.js'
import { runBounded, type Log, type Teardown } from './lib-teardown.js'

const REPO = 'bench/p2p'
const RUN_DEADLINE_MS = 20 * 60_000
/** How long the agents get to see each other; past it the pull goes ahead and the report says so. */
const MESH_TIMEOUT_MS = 30_000
/** How many of the agents every agent bootstraps from. */
const BOOTSTRAP_PEERS = 3
/** Quiet time between the mesh forming (or the agents starting) and the pull, so joining is over. */
const SETTLE_MS = 2000

/** `p2p-send`: P2P with every agent's clients sent to the peer holding a blob, or to its owner (`--send-to-holders on`, curl -L), as on nodes wired to containerd. */
const MODES = ['p2p', 'p2p-send', 'upstream'] as const
type Mode = typeof MODES[number]
const MODE_LABELS: Readonly<Record<Mode, string>> = { p2p: 'P2P on', 'p2p-send': 'P2P, clients sent to holders', upstream: 'each from upstream' }

interface RunResult {
  readonly n: number
  readonly mode: Mode
  /** From the common start to the last agent holding the image. */
  readonly seconds: number
  readonly fastestSeconds: number
  readonly upstreamBlobBytes: number
  readonly upstreamBlobGets: number
  readonly idleRssBytes: number
  readonly peakRssBytes: number
  /** CPU seconds (user + system) all agents used during the pull, together. */
  readonly agentCpuSeconds: number
  /** Blob requests the agents counted, by result (what the clients and the peers asked). */
  readonly blobResults: Readonly<Record<BlobResult, number>>
  /** The slowest agent's time per request (index, manifest, config, layers), ms. */
  readonly slowestSteps: readonly number[]
  /** P2P only: time from all agents ready to every agent counting N-1 peers, or the counts when that never came. */
  readonly mesh?: { readonly fullAfterMs?: number, readonly peers: readonly number[] }
  /** Warning and error log messages of the agents during the run, by message. */
  readonly warnings: ReadonlyMap<string, number>
  /** Blobs some agent (every agent, with clients sent to holders) still did not hold 30 s after the pull. */
  readonly notStored: readonly string[]
}

const BLOB_RESULTS = ['upstream', 'peer', 'hit', 'error'] as const
type BlobResult = typeof BLOB_RESULTS[number]

const log: Log = (message) => { console.error(`[p2p-bench] ${message}`) }

function parseCli (): { isQuick: boolean, counts: number[], rates: string[], modes: Mode[] } {
  const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false }, n: { type: 'string' }, rates: { type: 'string' }, modes: { type: 'string' } } })
  const isQuick = values.quick === true
  const rates = (values.rates ?? (isQuick ? '1gbit' : '100mbit,1gbit')).split(',').map((r) => r.trim())
  if (rates.some((r) => !/^\d+(kbit|mbit|gbit)$/.test(r))) throw new TypeError(`--rates takes tc rates such as 100mbit,1gbit; got ${values.rates}`)
  const counts = values.n === undefined
    ? (isQuick ? [2, 4] : [2, 4, 8])
    : values.n.split(',').map((s) => Number(s.trim()))
  if (counts.some((n) => !Number.isInteger(n) || n < 2 || n > 16)) throw new TypeError(`--n takes agent counts in 2..16, e.g. 2,4,8; got ${values.n}`)
  const modes = (values.modes ?? MODES.join(',')).split(',').map((m) => m.trim())
  if (!modes.every((m): m is Mode => (MODES as readonly string[]).includes(m))) throw new TypeError(`--modes takes some of ${MODES.join(',')}; got ${values.modes}`)
  return { isQuick, counts: [...new Set(counts)].sort((a, b) => a - b), rates, modes: MODES.filter((m) => modes.includes(m)) }
}

/** Blob bytes and GETs Distribution served, from its access log past `offset`. */
async function upstreamBlobTraffic (accessLog: string, offset: number): Promise<{ bytes: number, gets: number }> {
  const text = (await readFile(accessLog)).subarray(offset).toString('utf8')
  let bytes = 0
  let gets = 0
  for (const line of text.split('\n')) {
    const m = /^(\S+) .*"GET (\S+) HTTP\/[\d.]+" (\d{3}) (\d+)/.exec(line)
    if (m === null || !(m[2] ?? '').includes('/blobs/')) continue
    bytes += Number(m[4])
    gets++
  }
  return { bytes, gets }
}

/** Counts the warn/error/fatal lines (pino JSON, level >= 40) of agent logs by message. */
async function agentWarnings (logFiles: readonly string[]): Promise<Map<string, number>> {
  const counts = new Map<string, number>()
  for (const file of logFiles) {
    const text = await readFile(file, 'utf8').catch(() => '')
    for (const line of text.split('\n')) {
      if (!line.startsWith('{')) continue
      try {
        const entry = JSON.parse(line) as { level?: number, msg?: string, err?: unknown }
        if ((entry.level ?? 0) < 40) continue
        const err = typeof entry.err === 'string' ? entry.err : (entry.err as { message?: string } | undefined)?.message
        const key = `${entry.msg ?? '?'}${err === undefined ? '' : ` (${err.slice(0, 80)})`}`
        counts.set(key, (counts.get(key) ?? 0) + 1)
      } catch { /* a partial line */ }
    }
  }
  return counts
}

async function totalCpuSeconds (pids: readonly number[]): Promise<number> {
  return (await Promise.all(pids.map(readCpuSeconds))).reduce<number>((t, s) => t + (s ?? 0), 0)
}

class Bench {
  readonly #agentsByRun: DistAgent[] = []
  #runs = 0
  #upstream: ProcessHandle | undefined

  constructor (
    private readonly teardown: Teardown,
    private readonly workDir: string,
    private readonly cluster: NetnsCluster,
    private readonly image: TestImage,
    private readonly keyFile: string,
    private readonly accessLog: string,
  ) {}

  get upHost (): NetnsHost { return this.host(0) }
  get upstreamAddress (): string { return `${this.upHost.ip}:5000` }

  host (i: number): NetnsHost {
    const h = this.cluster.hosts[i]
    if (h === undefined) throw new RangeError(`no host ${i}`)
    return h
  }

  /** Distribution in the first namespace, the image pushed to it, then its link capped. */
  async startUpstream (): Promise<void> {
    const config = join(this.workDir, 'registry.json')
    await writeFile(config, JSON.stringify({
      version: 0.1,
      log: { level: 'warn', accesslog: { disabled: false } },
      http: { addr: this.upstreamAddress, secret: 'bench' },
      storage: { filesystem: { rootdirectory: join(this.workDir, 'registry') }, delete: { enabled: true } },
    }))
    const up = this.upHost
    const [cmd, args] = this.cluster.wrap(up, 'docker-registry', ['serve', config])
    this.#upstream = await startProcess(cmd, args, {
      name: 'distribution', logFile: this.accessLog, readyTimeoutMs: 20_000,
      readyCheck: async () => (await up.exec('curl', ['-sf', '-o', '/dev/null', `http://${this.upstreamAddress}/v2/`], 5000)).code === 0,
    })
    const upstream = this.#upstream
    this.teardown.add('distribution', async () => await upstream.stop('SIGTERM', 5000))
    const push = await up.exec('skopeo', ['--insecure-policy', 'copy', '--quiet', '--all', '--preserve-digests', '--dest-tls-verify=false',
      `oci:${this.image.layoutDir}:${this.image.tag}`, `docker://${this.upstreamAddress}/${REPO}:${this.image.tag}`], 180_000)
    if (push.code !== 0) throw new Error(`push failed: ${push.stderr}`)
  }

  /** Caps the upstream's egress. */
  async shape (rate: string): Promise<void> {
    await this.cluster.shape(this.upHost, rate)
  }

  async startAgents (n: number, mode: Mode, runDir: string): Promise<DistAgent[]> {
    const bootstrap = Array.from({ length: Math.min(BOOTSTRAP_PEERS, n) }, (_, i) => `/ip4/${this.host(i + 1).ip}/tcp/5001`)
    const started = await Promise.allSettled(Array.from({ length: n }, async (_, i) => {
      const h = this.host(i + 1)
      const args = ['--peer-address', `${h.ip}:5000`, '--registry', `${this.upstreamAddress}=http://${this.upstreamAddress}`, '--default-registry', this.upstreamAddress]
      if (mode !== 'upstream') {
        args.push('--p2p-listen', `/ip4/${h.ip}/tcp/5001`, '--cluster-key-file', this.keyFile, ...bootstrap.flatMap((b) => ['--bootstrap', b]))
        args.push('--send-to-holders', mode === 'p2p-send' ? 'on' : 'off')
      }
      return await startDistAgent({
        name: `agent-${i}`, netns: h.ns, listen: '0.0.0.0:5000', dataDir: join(runDir, `data-${i}`), args,
        logFile: join(runDir, `agent-${i}.log`), readyTimeoutMs: 60_000,
      })
    }))
    const agents = started.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []))
    this.#agentsByRun.push(...agents)
    const failed = started.find((r) => r.status === 'rejected')
    if (failed !== undefined) throw failed.reason
    for (const a of agents) {
      const comm = (await readFile(`/proc/${a.process.pid}/comm`, 'utf8').catch(() => '?')).trim()
      if (comm !== 'node') throw new Error(`${a.name}: pid ${a.process.pid} is ${comm}, not node: RSS would be measured on the wrong process`)
    }
    return agents
  }

  async stopAgents (): Promise<void> {
    const agents = this.#agentsByRun.splice(0)
    await Promise.all(agents.map(async (a) => { await a.stop() }))
  }

  /** Every agent GETs the index by tag, its platform's manifest, config and layers; all start together. */
  async pullAll (agents: readonly DistAgent[], follow: boolean): Promise<{ seconds: number, fastestSeconds: number, slowestSteps: number[] }> {
    const m = hostManifest(this.image)
    const base = 'http://127.0.0.1:5000/v2/' + REPO
    const urls = [`${base}/manifests/${this.image.tag}`, `${base}/manifests/${m.digest}`, `${base}/blobs/${m.configDigest}`, ...m.layers.map((l) => `${base}/blobs/${l.digest}`)]
    const sizes = [this.image.indexSize, m.size, m.configSize, ...m.layers.map((l) => l.size)]
    const started = performance.now()
    const done = await Promise.all(agents.map(async (a, i) => {
      const results = await curlGet(urls, { netns: this.host(i + 1).ns, maxTimeS: 600, headers: [`Accept: ${OCI_INDEX}, ${OCI_MANIFEST}`], follow })
      const seconds = (performance.now() - started) / 1000
      results.forEach((r, j) => {
        if (r.status !== 200 || r.bytes !== sizes[j]) throw new Error(`${a.name}: GET ${r.url}: status ${r.status}, ${r.bytes} of ${sizes[j]} bytes`)
      })
      log(`  ${a.name}: ${seconds.toFixed(2)} s; index, manifest, config, layers: ${results.map((r) => r.ms.toFixed(0)).join(', ')} ms`)
      return { seconds, steps: results.map((r) => r.ms) }
    }))
    const slowest = done.reduce((a, b) => (b.seconds > a.seconds ? b : a))
    return { seconds: slowest.seconds, fastestSeconds: Math.min(...done.map((d) => d.seconds)), slowestSteps: slowest.steps }
  }

  /**
   * Each agent's store holds the config and every layer, whole (the agent verified the digests); with clients
   * sent to holders only the agents that served bytes keep them, so then some agent holds each blob. What is
   * still missing after 30 s is returned (and shown in the report), not thrown: one slow or failed commit must
   * not cost the rest of the run.
   */
  async checkStored (agents: readonly DistAgent[], mode: Mode): Promise<string[]> {
    const m = hostManifest(this.image)
    const blobs = [{ digest: m.configDigest, size: m.configSize }, ...m.layers]
    const holds = async (a: DistAgent, d: { digest: string, size: number }): Promise<boolean> =>
      await stat(join(a.dataDir, 'blobs', 'sha256', d.digest.slice('sha256:'.length))).then((s) => s.size === d.size, () => false)
    const missing = async (): Promise<string[]> => {
      const out: string[] = []
      for (const d of blobs) {
        const lacking = (await Promise.all(agents.map(async (a) => (await holds(a, d)) ? undefined : a.name))).filter((n): n is string => n !== undefined)
        if (mode === 'p2p-send' ? lacking.length === agents.length : lacking.length > 0) out.push(`${d.digest.slice(0, 19)}… (${d.size} B) not held by ${lacking.join(', ')}`)
      }
      return out
    }
    // A client has its last byte once the bytes verified; the store's fsync and rename may still be under way.
    let left: string[] = []
    try {
      await waitFor(async () => (left = await missing()).length === 0, { timeoutMs: 30_000, intervalMs: 100, what: 'the agents to hold every blob' })
    } catch {
      log(`  after 30 s: ${left.join('; ')}`)
    }
    return left
  }

  /**
   * Waits until every agent counts N-1 peers (then all agree on each digest's rendezvous owner). An
   * incomplete mesh is a finding, not a failure: the pull goes ahead and the report shows the counts.
   */
  async waitForMesh (agents: readonly DistAgent[]): Promise<{ fullAfterMs?: number, peers: number[] }> {
    const started = Date.now()
    let peers: number[] = []
    try {
      await waitFor(async () => {
        peers = await Promise.all(agents.map(async (a) => await a.metric('flotilla_p2p_peers')))
        return peers.every((p) => p >= agents.length - 1)
      }, { timeoutMs: MESH_TIMEOUT_MS, intervalMs: 250, what: `a full mesh of ${agents.length} agents` })
      return { fullAfterMs: Date.now() - started, peers }
    } catch {
      log(`  no full mesh after ${MESH_TIMEOUT_MS / 1000} s: peers per agent ${peers.join(' ')}; pulling anyway`)
      return { peers }
    }
  }

  async run (n: number, mode: Mode): Promise<RunResult> {
    // A fresh directory per run: agents must start with empty stores (mkdir fails if it exists).
    const runDir = join(this.workDir, `run-${++this.#runs}-${n}-${mode}`)
    log(`N=${n} ${mode}: starting ${n} agent(s)`)
    await mkdir(runDir)
    try {
      const agents = await this.startAgents(n, mode, runDir)
      const mesh = mode !== 'upstream' && n > 1 ? await this.waitForMesh(agents) : undefined
      await new Promise((resolve) => setTimeout(resolve, SETTLE_MS))
      const pids = agents.map((a) => a.process.pid)
      const idleRssBytes = await maxRss(pids)
      const offset = (await stat(this.accessLog)).size
      const cpuBefore = await totalCpuSeconds(pids)
      const rss = new RssPeak(pids).start()
      const { seconds, fastestSeconds, slowestSteps } = await this.pullAll(agents, mode === 'p2p-send')
      const peakRssBytes = await rss.stop()
      const agentCpuSeconds = await totalCpuSeconds(pids) - cpuBefore
      const notStored = await this.checkStored(agents, mode)
      // Distribution writes the access log line once the response is done: give it a moment.
      await new Promise((resolve) => setTimeout(resolve, 300))
      const traffic = await upstreamBlobTraffic(this.accessLog, offset)
      const metrics = await Promise.all(agents.map(async (a) => await a.metricsText()))
      const count = (result: string): number => metrics.reduce((t, text) => t + sumMetric(text, 'flotilla_requests_total', { kind: 'blob', result }), 0)
      const result: RunResult = {
        n, mode, seconds, fastestSeconds, idleRssBytes, peakRssBytes, agentCpuSeconds, slowestSteps,
        ...(mesh === undefined ? {} : { mesh }),
        notStored, warnings: await agentWarnings(agents.map((a) => join(runDir, `${a.name}.log`))),
        upstreamBlobBytes: traffic.bytes, upstreamBlobGets: traffic.gets,
        blobResults: { upstream: count('upstream'), peer: count('peer'), hit: count('hit'), error: count('error') },
      }
      log(`N=${n} ${mode}: ${seconds.toFixed(2)} s (fastest ${fastestSeconds.toFixed(2)} s), upstream ${traffic.bytes} blob bytes in ${traffic.gets} GETs, ` +
        `RSS max idle ${formatMiB(idleRssBytes)} MiB / peak ${formatMiB(peakRssBytes)} MiB, agents' CPU ${agentCpuSeconds.toFixed(1)} s, ` +
        `blob results ${BLOB_RESULTS.map((b) => `${b} ${result.blobResults[b]}`).join(', ')}`)
      return result
    } finally {
      await this.stopAgents()
      const keep = process.env.FLOTILLA_BENCH_KEEP_LOGS
      if (keep !== undefined && keep !== '') await cp(runDir, join(keep, `${n}-${mode}`), { recursive: true, filter: (src) => !src.includes('/blobs/') })
      // Each run's stores go once it is measured: kept until the end, the runs' ~15 GB could fill the disk past
      // the agents' store.maxDiskPercent (75 %), and the last runs' agents would then keep nothing.
      await rm(runDir, { recursive: true, force: true })
    }
  }
}

/** The table, targets and details of the runs at one upstream rate. */
function rateSection (rate: string, results: readonly RunResult[], oneCopy: number, maxN: number, cores: number): string {
  const baseline = results[0]
  if (baseline === undefined) throw new Error('no baseline')
  const floor = (n: number): number => n * baseline.agentCpuSeconds / cores
  const table = markdownTable(
    ['Agents', 'Mode', 'Seconds (all hold it)', 'vs N=1', 'CPU floor here, s', 'Fastest agent, s', 'Upstream blob bytes', '× one copy', 'Upstream blob GETs', 'Agents\' CPU during pull, s', `Blob requests counted: ${BLOB_RESULTS.join(' / ')}`, 'Agent RSS max, idle / peak during pull, MiB', 'Mesh before the pull'],
    results.map((r) => [
      String(r.n),
      MODE_LABELS[r.mode],
      r.seconds.toFixed(2),
      `${(r.seconds / baseline.seconds).toFixed(2)}×`,
      floor(r.n).toFixed(2),
      r.fastestSeconds.toFixed(2),
      String(r.upstreamBlobBytes),
      r.upstreamBlobBytes === oneCopy ? '1×' : `**${(r.upstreamBlobBytes / oneCopy).toFixed(2)}× (${r.upstreamBlobBytes > oneCopy ? '+' : ''}${r.upstreamBlobBytes - oneCopy} B)**`,
      String(r.upstreamBlobGets),
      r.agentCpuSeconds.toFixed(1),
      BLOB_RESULTS.map((b) => String(r.blobResults[b])).join(' / '),
      `${formatMiB(r.idleRssBytes)} / ${formatMiB(r.peakRssBytes)}`,
      r.mesh === undefined
        ? '—'
        : r.mesh.fullAfterMs === undefined
          ? `**incomplete after ${MESH_TIMEOUT_MS / 1000} s**: peers per agent ${r.mesh.peers.join(' ')}`
          : `full after ${(r.mesh.fullAfterMs / 1000).toFixed(1)} s`,
    ]),
  )
  const top = results.find((r) => r.n === maxN && r.mode === 'p2p')
  const p2pRuns = results.filter((r) => r.mode !== 'upstream')
  const sent = results.find((r) => r.n === maxN && r.mode === 'p2p-send')
  const direct = results.find((r) => r.n === maxN && r.mode === 'upstream')
  const targets = [
    top === undefined
      ? undefined
      : `- N=${maxN} with P2P takes ≤ 2× the time of N=1: ${top.seconds.toFixed(2)} s vs ${baseline.seconds.toFixed(2)} s = ${(top.seconds / baseline.seconds).toFixed(2)}× — ${top.seconds <= 2 * baseline.seconds ? 'met' : '**not met**'}` +
        (floor(maxN) > 2 * baseline.seconds ? ` (out of reach on this machine: the CPU floor for ${maxN} agents is ${floor(maxN).toFixed(2)} s)` : ''),
    `- Upstream blob bytes 1× one copy with P2P on: ${p2pRuns.map((r) => `N=${r.n} ${MODE_LABELS[r.mode]} ${(r.upstreamBlobBytes / oneCopy).toFixed(2)}×`).join(', ')} — ${p2pRuns.every((r) => r.upstreamBlobBytes === oneCopy) ? 'met' : '**not met**'}`,
    sent === undefined
      ? undefined
      : `- N=${maxN}, clients sent to holders (as containerd is): ${sent.seconds.toFixed(2)} s = ${(sent.seconds / baseline.seconds).toFixed(2)}× N=1 (issue 16: ≤ 1.1× at 100 Mbit/s); agents' CPU ${sent.agentCpuSeconds.toFixed(1)} s` +
        (direct === undefined ? '' : ` = ${(sent.agentCpuSeconds / direct.agentCpuSeconds).toFixed(2)}× that of ${maxN} pulls each from upstream (issue 16: ≤ 1.0× at 1 Gbit/s)`),
  ].filter((t): t is string => t !== undefined)
  const label = (r: RunResult): string => `N=${r.n} ${MODE_LABELS[r.mode]}`
  return [
    `## Upstream capped at ${rate}`,
    '',
    `Baseline: N=1, a single agent without P2P (${baseline.seconds.toFixed(2)} s, ${baseline.agentCpuSeconds.toFixed(2)} CPU s).`,
    '',
    table,
    '',
    'Targets:',
    targets.join('\n'),
    '',
    'Slowest agent, time per request (index by tag, manifest, config, layers), ms:',
    results.map((r) => `- ${label(r)}: ${r.slowestSteps.map((ms) => ms.toFixed(0)).join(', ')}`).join('\n'),
    '',
    'Agent warnings and errors logged during each run:',
    results.map((r) => `- ${label(r)}: ${r.warnings.size === 0 ? 'none' : [...r.warnings].map(([msg, count]) => `${msg} ×${count}`).join('; ')}`).join('\n'),
    ...(results.some((r) => r.notStored.length > 0)
      ? ['', '**Not stored 30 s after the pull** (the store had not committed them):', ...results.filter((r) => r.notStored.length > 0).map((r) => `- ${label(r)}: ${r.notStored.join('; ')}`)]
      : []),
  ].join('\n')
}

async function main (teardown: Teardown): Promise<void> {
  const { isQuick, counts, rates, modes } = parseCli()
  const largeLayerMiB = isQuick ? 64 : 200
  const maxN = Math.max(...counts)
  const startedAt = new Date()
  const machine = describeMachine()
  await assertBuilt()

  const work = await makeTempDir('p2p-bench')
  teardown.add('work dir', work.cleanup)
  const keyFile = join(work.path, 'cluster.key')
  await writeFile(keyFile, generateClusterKey(), { mode: 0o600 })
  const accessLog = join(work.path, 'registry.log')
  log(`building a test image with a ${largeLayerMiB} MiB layer; creating ${maxN + 1} network namespaces`)
  const [cluster, image] = await Promise.allSettled([
    createNetnsCluster(['up', ...Array.from({ length: maxN }, (_, i) => `a${i}`)]),
    buildTestImage({ workDir: work.path, largeLayerMiB }),
  ])
  if (cluster.status === 'fulfilled') teardown.add('network namespaces', cluster.value.destroy)
  if (cluster.status === 'rejected') throw cluster.reason
  if (image.status === 'rejected') throw image.reason
  const bench = new Bench(teardown, work.path, cluster.value, image.value, keyFile, accessLog)
  teardown.add('agents', async () => { await bench.stopAgents() })
  await bench.startUpstream()

  const m = hostManifest(image.value)
  const oneCopy = m.configSize + m.layers.reduce((t, l) => t + l.size, 0)
  const sections: string[] = []
  for (const rate of rates) {
    log(`upstream capped at ${rate}`)
    await bench.shape(rate)
    const results: RunResult[] = [await bench.run(1, 'upstream'), await bench.run(1, 'p2p')]
    for (const n of counts) for (const mode of modes) results.push(await bench.run(n, mode))
    sections.push(rateSection(rate, results, oneCopy, maxN, machine.nproc))
  }

  const report = renderReport({
    title: `flotilla peer to peer: N agents pulling one image at once${isQuick ? ' (quick run)' : ''}`,
    machine,
    command: invocation(fileURLToPath(import.meta.url)),
    startedAt,
    facts: [
      `Image: the multi-arch test image; this platform's config and layers are ${oneCopy} bytes (${(oneCopy / MIB).toFixed(1)} MiB, large layer ${largeLayerMiB} MiB of random data)`,
      `Upstream: Distribution 2.8 in its own network namespace, its egress capped (tc tbf) at ${rates.join(', then ')}; every agent in its own namespace on one bridge`,
      'Pull: at the same moment every agent is asked (curl inside its namespace, bodies to /dev/null) for the index by tag, the manifest, the config and each layer, in that order; time is until the last agent has them all',
      `P2P on: --p2p-listen, --bootstrap (the first ${BOOTSTRAP_PEERS} agents), --cluster-key-file, --send-to-holders off (every agent relays and keeps a copy); the pull starts ${SETTLE_MS / 1000} s after every agent counts N-1 peers. P2P, clients sent to holders: the same with --send-to-holders on and curl -L, as on nodes whose agent is wired to containerd (containerd follows the 307s and keeps the node's copy; here curl keeps nothing, and only the agents that served bytes hold them). Each from upstream: same agents without P2P (also ${SETTLE_MS / 1000} s after start)`,
      'RSS: VmRSS of each agent\'s node process (`ip netns exec` execs node), the largest over the agents: after start (and the mesh), and the peak sampled every 100 ms during the pull',
      `CPU floor: all N agents and their curl clients share this machine's ${machine.nproc} cores, so N agents cannot finish before N × (CPU seconds of the lone agent's pull) / ${machine.nproc}; on a real cluster each node brings its own cores`,
    ],
    table: sections.join('\n\n'),
    notes: [
      '"Blob requests counted" adds up flotilla_requests_total{kind="blob"} over the agents: with P2P a peer\'s request to the owner counts on both sides.',
    ],
  })
  const path = await writeResult('p2p.md', report)
  console.log(report)
  log(`written to ${path}`)
}

await runBounded(log, RUN_DEADLINE_MS, main)
