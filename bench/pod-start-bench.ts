// Pod-start metric (issue 16): how long containerd takes to get a ~100 MB single-platform image ready to start a
// pod (pulled and unpacked into the snapshotter) on one node, three ways, in one run: through the node's flotilla
// agent served by a peer while the upstream registry is stopped; `ctr images import` of an OCI archive on local
// disk; `ctr images pull` from a plain Distribution on the node's own loopback. A fresh containerd every run; the
// three ways interleave (round i rotates the order); target: flotilla ≤ 1.05× ctr import.
//
//   npx tsx bench/pod-start-bench.ts [--quick]   (needs root, npm run build, containerd + ctr, docker-registry, skopeo, umoci, curl)
import { access, mkdir, rm, stat, writeFile } from 'node:fs/promises'
import { loadavg } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'
import { parseArgs } from 'node:util'
import { generateClusterKey } from '../src/p2p/cluster-key.js'
import type { ProcessHandle } from '../test/helpers/child-process.js'
import { startContainerd, writeHostsToml, type Containerd } from '../test/helpers/containerd.js'
import { sumMetric } from '../test/helpers/flotilla-agent.js'
import { freePort } from '../test/helpers/free-port.js'
import { createNetnsCluster, type NetnsHost } from '../test/helpers/netns-cluster.js'
import { pushFromNetns, startNetnsRegistry } from '../test/helpers/netns-registry.js'
import { runCommandChecked } from '../test/helpers/run-command.js'
import { skopeoCopy } from '../test/helpers/skopeo.js'
import { makeTempDir } from '../test/helpers/temp-dir.js'
import { OCI_INDEX, OCI_MANIFEST, buildTestImage, hostArchitecture, hostManifest, type TestImage } from '../test/helpers/test-image.js'
import { waitFor } from '../test/helpers/wait-for.js'
import { curlGet } from './lib-curl.js'
import { assertBuilt, startDistAgent, type DistAgent } from './lib-dist-agent.js'
import { toolVersion } from './lib-fixture.js'
import {
  WAYS, WAY_LABELS, assertReady, breakdownNote, ctrTimed, flotillaDetail, ordinal, pullProgressOf, resultTable, runsOf, singlePlatformLayout, unpackSecondsOf,
  type FlotillaFacts, type Run, type Way,
} from './lib-pod-start.js'
import { describeMachine, invocation, renderReport, writeResult } from './lib-report.js'
import { cpuOf } from './lib-rss.js'
import { runBounded, type Log, type Teardown } from './lib-teardown.js'

const REPO = 'bench/pod-start'
const TAG = 'v1'
const RUN_DEADLINE_MS = 10 * 60_000
/** flotilla's figure against ctr import's. */
const TARGET_VS_IMPORT = 1.05
/** How long a fresh agent gets to join the mesh. */
const MESH_TIMEOUT_MS = 30_000
/** Quiet time before each timed command: containerd's and the agent's start-up work (and the joining) is over. */
const SETTLE_MS = 2000
const CTR_TIMEOUT_MS = 180_000
/**
 * The Accept containerd sends for a manifest. n0 must ask with it: an agent keeps (and advertises to its peers)
 * a tag's record only from a client accepting every manifest kind, and n1 resolves the tag from that record.
 */
const CONTAINERD_ACCEPT = [
  'application/vnd.docker.distribution.manifest.v2+json', 'application/vnd.docker.distribution.manifest.list.v2+json', OCI_MANIFEST, OCI_INDEX, '*/*',
].join(', ')

const log: Log = (message) => { console.error(`[pod-start-bench] ${message}`) }

interface Node { readonly host: NetnsHost, readonly port: number, readonly p2pPort: number }

class Bench {
  readonly runs: Run[] = []
  /** The snapshotter containerd got (overlayfs when the temp dir allows it). */
  snapshotter: string | undefined
  #n0: DistAgent | undefined

  constructor (
    private readonly teardown: Teardown,
    private readonly workDir: string,
    private readonly nodes: readonly [Node, Node],
    private readonly keyFile: string,
    private readonly upstreamAddr: string,
    private readonly image: { readonly layers: number, readonly refs: Readonly<Record<Way, string>>, readonly archive: string },
    /** The loopback Distribution (`ip netns exec` execs it: the pid is the registry's). */
    private readonly loopbackPid: number,
  ) {}

  get n1 (): NetnsHost { return this.nodes[1].host }

  /**
   * An agent in node i's namespace, p2p on; the upstream is its only registry. Both bootstrap from n0's address (a
   * seed, as a DNS name listing the nodes would be): n0 finds only itself there and is ready alone, n1 dials n0.
   */
  async startAgent (i: 0 | 1, dataDir: string, extra: readonly string[] = []): Promise<DistAgent> {
    const { host, port, p2pPort } = this.nodes[i]
    const seed = this.nodes[0]
    const agent = await startDistAgent({
      name: `agent-n${i}`, netns: host.ns, listen: `0.0.0.0:${port}`, dataDir, logFile: `${dataDir}.log`, readyTimeoutMs: 60_000,
      args: ['--peer-address', `${host.ip}:${port}`, '--registry', `${this.upstreamAddr}=http://${this.upstreamAddr}`, '--default-registry', this.upstreamAddr,
        '--p2p-listen', `/ip4/${host.ip}/tcp/${p2pPort}`, '--cluster-key-file', this.keyFile, '--bootstrap', `/ip4/${seed.host.ip}/tcp/${seed.p2pPort}`, ...extra],
    })
    this.teardown.add(`${agent.name} (${dataDir})`, agent.stop)
    return agent
  }

  /** n0's agent gets the whole image through its API (tag, manifest, config, layers) and keeps it; then the upstream is stopped. */
  async seedPeer (testImage: TestImage, upstream: ProcessHandle): Promise<void> {
    const n0 = this.#n0 = await this.startAgent(0, join(this.workDir, 'n0-data'))
    const m = hostManifest(testImage)
    const base = `${n0.url}/v2/${REPO}`
    const blobs = [{ digest: m.configDigest, size: m.configSize }, ...m.layers]
    const results = await curlGet([`${base}/manifests/${TAG}`, `${base}/manifests/${m.digest}`, ...blobs.map((b) => `${base}/blobs/${b.digest}`)],
      { netns: this.nodes[0].host.ns, maxTimeS: 120, headers: [`Accept: ${CONTAINERD_ACCEPT}`] })
    const sizes = [m.size, m.size, ...blobs.map((b) => b.size)]
    results.forEach((r, j) => { if (r.status !== 200 || r.bytes !== sizes[j]) throw new Error(`n0: GET ${r.url}: status ${r.status}, ${r.bytes} of ${sizes[j]} bytes`) })
    // The client gets its last byte once the bytes are verified, before the store's rename: wait for the files.
    await waitFor(async () => {
      const held = await Promise.all(blobs.map(async (b) => await stat(join(n0.dataDir, 'blobs', 'sha256', b.digest.slice(7))).then((s) => s.size === b.size, () => false)))
      return held.every(Boolean)
    }, { timeoutMs: 30_000, intervalMs: 100, what: "every blob in n0's store" })
    await upstream.stop('SIGTERM', 5000)
    const probe = await this.n1.exec('curl', ['-s', '-o', '/dev/null', '--max-time', '2', `http://${this.upstreamAddr}/v2/`], 5000)
    if (probe.code === 0) throw new Error(`the upstream ${this.upstreamAddr} still answers after being stopped`)
    log(`n0 holds the image (${blobs.length} blobs); upstream stopped (curl from n1: exit ${probe.code})`)
  }

  /** A fresh containerd (own root, state, socket, certs.d) in n1's namespace. */
  async freshContainerd (): Promise<Containerd> {
    const ctrd = await startContainerd({ netns: this.n1.ns, namespace: 'k8s.io' })
    this.teardown.add('containerd', ctrd.stop)
    this.snapshotter ??= ctrd.snapshotter
    return ctrd
  }

  async run (way: Way, round: number, position: number): Promise<Run> {
    // Dirty pages of the previous run are written back outside the timing.
    await runCommandChecked('sync', [], { timeoutMs: 120_000 })
    const ctrd = await this.freshContainerd()
    try {
      const run = way === 'flotilla' ? await this.runFlotilla(ctrd, round, position) : await this.runCtr(way, ctrd, round, position)
      await assertReady(ctrd, this.image.refs[way], this.image.layers)
      log(`round ${round + 1}, ${way}: ${run.seconds.toFixed(2)} s (unpack ${run.unpackSeconds?.toFixed(2) ?? '—'} s, ctr ${run.ctrCpuSeconds.toFixed(2)} CPU s, containerd ${run.containerdCpuSeconds.toFixed(2)} CPU s)`)
      this.runs.push(run)
      return run
    } finally {
      await ctrd.stop()
    }
  }

  async runCtr (way: 'import' | 'loopback', ctrd: Containerd, round: number, position: number): Promise<Run> {
    const args = way === 'import'
      ? ['images', 'import', '--snapshotter', ctrd.snapshotter, '--platform', `linux/${hostArchitecture()}`, this.image.archive]
      : ['images', 'pull', '--plain-http', '--snapshotter', ctrd.snapshotter, this.image.refs.loopback]
    await sleep(SETTLE_MS)
    const server = way === 'loopback' ? this.loopbackPid : undefined
    const cpu0 = await cpuOf(ctrd.process.pid)
    const server0 = server === undefined ? NaN : await cpuOf(server)
    const t = await ctrTimed(this.n1.ns, ctrd, args, CTR_TIMEOUT_MS)
    const containerdCpuSeconds = await cpuOf(ctrd.process.pid) - cpu0
    const serverCpu = server === undefined ? {} : { serverCpuSeconds: await cpuOf(server) - server0 }
    return { way, round, position, seconds: t.seconds, ctrCpuSeconds: t.cpuSeconds, containerdCpuSeconds, ...serverCpu, ...ctrFigures(way, t.stdout) }
  }

  /** A new n1 agent on a fresh data dir joins n0; containerd pulls the upstream's name through it. */
  async runFlotilla (ctrd: Containerd, round: number, position: number): Promise<Run> {
    const n0 = this.#n0
    if (n0 === undefined) throw new Error('seedPeer first')
    const dataDir = join(this.workDir, `n1-data-${round}`)
    if (await access(dataDir).then(() => true, () => false)) throw new Error(`${dataDir} exists: n1's agent must start empty`)
    // Wired to this run's containerd, as on a node: p2p.sendToHolders (auto) is then on.
    const n1 = await this.startAgent(1, dataDir, ['--containerd-socket', ctrd.socket, '--containerd-namespace', ctrd.namespace])
    try {
      const joining = Date.now()
      await waitFor(async () => await n1.metric('flotilla_p2p_peers') >= 1 && await n0.metric('flotilla_p2p_peers') >= 1,
        { timeoutMs: MESH_TIMEOUT_MS, intervalMs: 100, what: "n1's new agent and n0's to count each other as peers" })
      const meshMs = Date.now() - joining
      await writeHostsToml(ctrd.certsDir, this.upstreamAddr, { server: `http://${this.upstreamAddr}`, mirrors: [{ url: n1.url }] })
      await sleep(SETTLE_MS)
      const pids = [n1.process.pid, n0.process.pid, ctrd.process.pid]
      const cpu0 = await Promise.all(pids.map(cpuOf))
      const t = await ctrTimed(this.n1.ns, ctrd,
        ['images', 'pull', '--plain-http', '--hosts-dir', ctrd.certsDir, '--snapshotter', ctrd.snapshotter, this.image.refs.flotilla], CTR_TIMEOUT_MS)
      const [n1Cpu, n0Cpu, ctrdCpu] = (await Promise.all(pids.map(cpuOf))).map((c, i) => c - (cpu0[i] ?? NaN))
      const metrics = await n1.metricsText()
      const count = (kind: string, result: string): number => sumMetric(metrics, 'flotilla_requests_total', { kind, result })
      const requests = ['manifest', 'blob'].flatMap((kind) => ['hit', 'peer', 'upstream', 'stale', 'miss', 'error']
        .map((result) => [kind, result, count(kind, result)] as const)).filter(([, , n]) => n > 0)
      const headers = (kind: string): { seconds: number, count: number } => ({
        seconds: sumMetric(metrics, 'flotilla_request_duration_seconds_sum', { kind }), count: sumMetric(metrics, 'flotilla_request_duration_seconds_count', { kind }),
      })
      const flotilla: FlotillaFacts = {
        n1CpuSeconds: n1Cpu ?? NaN, n0CpuSeconds: n0Cpu ?? NaN, meshMs,
        requests: requests.length === 0 ? 'none counted' : requests.map(([k, r, n]) => `${k} ${r} ${n}`).join(', '),
        blobsFromPeer: count('blob', 'peer'), blobsFromUpstream: count('blob', 'upstream'), blobsSentToHolder: sumMetric(metrics, 'flotilla_p2p_sent_to_holder_total'),
        upstreamCallsFailed: sumMetric(metrics, 'flotilla_upstream_endpoint_requests_total', { result: 'failed' }),
        manifestHeaders: headers('manifest'), blobHeaders: headers('blob'),
      }
      return {
        way: 'flotilla', round, position, seconds: t.seconds, ctrCpuSeconds: t.cpuSeconds, containerdCpuSeconds: ctrdCpu ?? NaN,
        serverCpuSeconds: flotilla.n1CpuSeconds + flotilla.n0CpuSeconds, flotilla, ...ctrFigures('flotilla', t.stdout),
      }
    } finally {
      await n1.stop()
      await rm(dataDir, { recursive: true, force: true })
    }
  }
}

/** What ctr's output says about its steps: the unpack time, and for pulls when the tag resolved and the content was in. */
function ctrFigures (way: Way, stdout: string): Pick<Run, 'unpackSeconds' | 'progress'> {
  const unpackSeconds = unpackSecondsOf(stdout)
  return { ...(unpackSeconds === undefined ? {} : { unpackSeconds }), ...(way === 'import' ? {} : { progress: pullProgressOf(stdout) }) }
}

/** Two free ports per node: the registry API and p2p (the namespaces are ours and empty, the host's picks are free there too). */
async function nodeOf (host: NetnsHost | undefined): Promise<Node> {
  if (host === undefined) throw new Error('missing host')
  return { host, port: await freePort(), p2pPort: await freePort() }
}

async function main (teardown: Teardown): Promise<void> {
  const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false } } })
  const isQuick = values.quick === true
  // 96 MiB of random data plus busybox's layer: about 100 MB (10^6) of layers; quick: about 30 MB.
  const largeLayerMiB = isQuick ? 28 : 96
  const rounds = isQuick ? 1 : 3
  const startedAt = new Date()
  const machine = describeMachine()
  await assertBuilt()

  const work = await makeTempDir('pod-start-bench')
  teardown.add('work dir', work.cleanup)
  const keyFile = join(work.path, 'cluster.key')
  await writeFile(keyFile, generateClusterKey(), { mode: 0o600 })
  log(`building a test image with a ${largeLayerMiB} MiB layer; creating 3 network namespaces (upstream, n0, n1)`)
  const [clusterResult, imageResult] = await Promise.allSettled([
    createNetnsCluster(['up', 'n0', 'n1']),
    buildTestImage({ workDir: work.path, largeLayerMiB }),
  ])
  if (clusterResult.status === 'fulfilled') teardown.add('network namespaces', clusterResult.value.destroy)
  if (clusterResult.status === 'rejected') throw clusterResult.reason
  if (imageResult.status === 'rejected') throw imageResult.reason
  const cluster = clusterResult.value
  const testImage = imageResult.value
  const [up, n0, n1] = await Promise.all(cluster.hosts.map(async (h) => await nodeOf(h)))
  if (up === undefined || n0 === undefined || n1 === undefined) throw new Error('unreachable')
  const layout = await singlePlatformLayout(testImage, join(work.path, 'single'), TAG)

  // The upstream in its own namespace, and the loopback Distribution on n1's 127.0.0.1; both get the image (untimed).
  const upstreamAddr = `${up.host.ip}:${up.port}`
  const loopbackAddr = `127.0.0.1:${await freePort()}`
  const registries = await Promise.all([
    { host: up.host, addr: upstreamAddr, name: 'upstream' },
    { host: n1.host, addr: loopbackAddr, name: 'loopback' },
  ].map(async (r) => {
    const dir = join(work.path, r.name)
    await mkdir(dir)
    const proc = await startNetnsRegistry({ cluster, host: r.host, dir, addr: r.addr, name: r.name, logFile: join(dir, 'registry.log') })
    teardown.add(`Distribution (${r.name})`, async () => await proc.stop('SIGTERM', 5000))
    await pushFromNetns(r.host, layout.dir, TAG, `${r.addr}/${REPO}:${TAG}`)
    return proc
  }))
  const [upstreamProc, loopbackProc] = registries
  if (upstreamProc === undefined || loopbackProc === undefined) throw new Error('unreachable')
  const refs: Record<Way, string> = { flotilla: `${upstreamAddr}/${REPO}:${TAG}`, loopback: `${loopbackAddr}/${REPO}:${TAG}`, import: `${upstreamAddr}/${REPO}:${TAG}` }
  // The archive on local disk: the same image (digests kept), named as on the upstream.
  const archive = join(work.path, 'image.oci.tar')
  await skopeoCopy(`oci:${layout.dir}:${TAG}`, `oci-archive:${archive}:${refs.import}`, { preserveDigests: true, timeoutMs: 180_000 })
  const archiveBytes = (await stat(archive)).size
  // The build's multi-arch layout is not needed any more.
  await rm(testImage.layoutDir.replace(/\/layout$/, ''), { recursive: true, force: true })

  const bench = new Bench(teardown, work.path, [n0, n1], keyFile, upstreamAddr, { layers: layout.layers, refs, archive }, loopbackProc.pid)
  await bench.seedPeer(testImage, upstreamProc)

  for (let round = 0; round < rounds; round++) {
    const order = WAYS.map((_, k) => WAYS[(round + k) % WAYS.length]).filter((w): w is Way => w !== undefined)
    log(`round ${round + 1} of ${rounds}: ${order.join(', ')}`)
    for (const [position, way] of order.entries()) await bench.run(way, round, position)
  }
  const loadAtEnd = loadavg()[0] ?? NaN

  const byWay = Object.fromEntries(WAYS.map((w) => [w, bench.runs.filter((r) => r.way === w)])) as Record<Way, Run[]>
  const { table, ratio, loopbackRatio, isMet } = resultTable(byWay, TARGET_VS_IMPORT)
  const [ctrVersion, skopeoVersion, registryVersion] = await Promise.all([
    toolVersion('ctr', ['--version']), toolVersion('skopeo', ['--version']), toolVersion('docker-registry', ['--version']),
  ])
  const snapshotter = bench.snapshotter ?? '?'
  const report = renderReport({
    title: `Pod start: containerd pull and unpack of a ~${Math.round(layout.bytes / 1e6)} MB image, three ways${isQuick ? ' (quick run)' : ''}`,
    machine,
    command: invocation(fileURLToPath(import.meta.url)),
    startedAt,
    facts: [
      `Load average (1 min): ${machine.load1.toFixed(2)} at start, ${loadAtEnd.toFixed(2)} at end`,
      `Image: the test image's linux/${hostArchitecture()} manifest alone (single platform; busybox layer + ${largeLayerMiB} MiB of seeded random bytes, gzip-wrapped by umoci, so incompressible): ${layout.layers} layers, ${layout.bytes} bytes of manifest, config and layers`,
      `containerd: ${ctrVersion}, a fresh one for every run (own root, state, socket and certs.d; snapshotter ${snapshotter}), running in n1's network namespace; every ctr command runs there too (ctr 1.6 fetches in the client and has containerd unpack). Time = wall time of the ctr command, i.e. content fetched or imported **and unpacked**; checked after each run: \`ctr images ls\` lists the ref and the snapshotter holds ${layout.layers} committed snapshots`,
      `flotilla: two built agents (\`node dist/cli/main.js serve\`, log level warn) in namespaces n0 and n1, p2p on (same cluster key; both bootstrap from n0's address, so n1 dials n0). n0's agent got the image through its API (tag with containerd's Accept, manifest, config, layers by curl) from the upstream (${registryVersion} in a third namespace), then the upstream was **stopped**. Each run: a new n1 agent on a fresh data dir, wired to that run's containerd (\`--containerd-socket\`, so \`p2p.sendToHolders\` is on: a blob GET that n0 holds is answered with a 307 to n0), joins the mesh (both count a peer), then containerd pulls \`${refs.flotilla}\` with a hosts.toml (\`--hosts-dir\`) naming n1's agent on 127.0.0.1 first and the upstream as server. n0's agent is not wired to containerd`,
      `ctr import: \`ctr images import --platform linux/${hostArchitecture()} --snapshotter ${snapshotter} FILE\` (unpacks, ctr's default) of an oci-archive written once before the runs by ${skopeoVersion} from the same layout (${archiveBytes} bytes, digests kept), read from the page cache`,
      `loopback Distribution: ${registryVersion} on n1's 127.0.0.1 (its own storage, the image pushed before the runs); \`ctr images pull --plain-http\``,
      `${rounds} round(s); round i runs the three ways in the order rotated by i; \`sync\` before every run and ${SETTLE_MS / 1000} s of quiet after containerd (and n1's agent) started, outside the timing; nothing is dropped from the page cache`,
      `CPU: /proc/<pid>/stat of containerd, the agents and the loopback Distribution before and after the command ("server CPU": both agents, or Distribution); ctr's from our reaped children's CPU (nothing else of ours runs meanwhile). "Unpack s" is ctr pull's own \`done: …\` figure (ctr import prints none)`,
    ],
    table,
    notes: [
      `Target: flotilla ≤ ${TARGET_VS_IMPORT.toFixed(2)}× ctr import: ${ratio.toFixed(2)}× — ${isMet ? 'met' : '**not met**'}. Against the loopback Distribution: ${loopbackRatio.toFixed(2)}×.`,
      `Every flotilla run served by the peer (n1's agent counted blobs with result peer, none upstream): ${byWay.flotilla.every((r) => (r.flotilla?.blobsFromPeer ?? 0) > 0 && r.flotilla?.blobsFromUpstream === 0) ? 'yes' : '**no**'}; blob GETs n1 sent to n0 with a 307, per run: ${byWay.flotilla.map((r) => r.flotilla?.blobsSentToHolder ?? '—').join(', ')} (of ${layout.layers + 1} blobs).`,
      breakdownNote(byWay),
      ['Details:',
        ...WAYS.map((w) => `- ${WAY_LABELS[w]}: runs ${runsOf(byWay[w], (r) => r.seconds)} s (round order: ${byWay[w].map((r) => ordinal(r.position)).join(', ')}); ` +
          (w === 'import' ? '' : `tag resolved by ${runsOf(byWay[w], (r) => r.progress?.resolvedBy, 1)} s; content by ${runsOf(byWay[w], (r) => r.progress?.contentBy, 1)} s; unpack ${runsOf(byWay[w], (r) => r.unpackSeconds)} s; `) +
          `ctr CPU ${runsOf(byWay[w], (r) => r.ctrCpuSeconds)} s; containerd CPU ${runsOf(byWay[w], (r) => r.containerdCpuSeconds)} s`),
        ...byWay.flotilla.map((r) => `- flotilla ${flotillaDetail(r)}`),
      ].join('\n'),
    ],
  })
  const path = await writeResult('pod-start.md', report)
  console.log(report)
  log(`written to ${path}`)
}

await runBounded(log, RUN_DEADLINE_MS, main)
