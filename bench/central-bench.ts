// The central mirror's fan-in (issue 14, check 7): N node agents pull a cold image at the same moment through one
// central cache, either a central `flotilla serve --role mirror` or Debian's Distribution in proxy mode, in front
// of an upstream Distribution behind the counting proxy. Measured per N and central: wall time until every agent
// has the image, the upstream's blob bytes, the central's CPU and peak RSS, and that every pull got the whole,
// verified content. Everything is fresh per run (central with an empty store, agents with empty data dirs); the
// two centrals alternate which goes first from one N to the next.
//
//   npx tsx bench/central-bench.ts [--quick] [--n 1,4,16] [--layer-mib 200]
//        (needs docker-registry, skopeo, umoci, curl; `npm run build` first: the centrals and agents run from dist/)
import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { rm, stat, writeFile } from 'node:fs/promises'
import { loadavg } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { pipeline } from 'node:stream/promises'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { startCountingProxy, type CountingProxy } from '../test/helpers/counting-proxy.js'
import { startDistributionProxy } from '../test/helpers/distribution.js'
import { freePort } from '../test/helpers/free-port.js'
import { runCommand } from '../test/helpers/run-command.js'
import { makeTempDir } from '../test/helpers/temp-dir.js'
import { OCI_INDEX, OCI_MANIFEST, hostManifest, pushTestImage } from '../test/helpers/test-image.js'
import { waitFor } from '../test/helpers/wait-for.js'
import { curlGet, type CurlResult } from './lib-curl.js'
import { assertBuilt, startDistAgent, type DistAgent } from './lib-dist-agent.js'
import { describeMachine, formatMiB, invocation, markdownTable, median, renderReport, writeResult } from './lib-report.js'
import { cpuOf, readPeakRss, readRss } from './lib-rss.js'
import { startRegistryAndImage, toolVersion } from './lib-fixture.js'
import { runBounded, type Log, type Teardown } from './lib-teardown.js'

const REPO = 'bench/central'
const ACCEPT = [OCI_INDEX, OCI_MANIFEST, 'application/vnd.docker.distribution.manifest.list.v2+json', 'application/vnd.docker.distribution.manifest.v2+json'].join(', ')
/** Agents started at once: sixteen node processes starting together on two cores miss their readiness bound. */
const START_BATCH = 4
/** Idle time between the last agent's readiness and the pull (their start-up work settles). */
const SETTLE_MS = 2000
/** Per transfer (curl --max-time). */
const TRANSFER_MAX_S = 240

const log: Log = (message) => { console.error(`[central-bench] ${message}`) }

type CentralKind = 'flotilla' | 'distribution'
const CENTRAL_LABEL: Record<CentralKind, string> = {
  flotilla: 'flotilla --role mirror',
  distribution: 'Distribution proxy mode',
}

/** A central cache, started fresh (empty store) for one run. */
interface Central {
  readonly kind: CentralKind
  readonly url: string
  readonly pid: number
  /** Blobs it holds afterwards (flotilla only). */
  storedBlobs (): Promise<number | undefined>
  stop (): Promise<void>
}

interface Run {
  readonly central: CentralKind
  readonly n: number
  /** From the moment the N clients start to the last one's last byte. */
  readonly wallSeconds: number
  readonly perAgentSeconds: readonly number[]
  readonly upstreamBlobBytes: number
  /** 200 GETs of the large layer the upstream answered. */
  readonly upstreamLargeGets: number
  /** Every request the upstream saw, by method and kind. */
  readonly upstreamRequests: string
  readonly centralCpuSeconds: number
  readonly centralIdleRssBytes: number
  /** VmHWM after the pull (so it includes the start-up). */
  readonly centralPeakRssBytes: number
  readonly agentsCpuSeconds: number
  /** The largest VmHWM of any agent after the pull. */
  readonly agentPeakRssBytes: number
  /** The bench process's CPU over the pull: the counting proxy's work, mostly. */
  readonly proxyCpuSeconds: number
  /** Requests the agents sent to the upstream itself (the central passed over). */
  readonly agentFallbacks: number
  /**
   * Transfers a client did not get whole: an agent whose central sent no first byte within its bound answers
   * 503 ("try again or another host"), which containerd would take to its next host and curl does not. Only
   * the reference central (Distribution) may have them; a flotilla central with any fails the run.
   */
  readonly incomplete: readonly string[]
  readonly centralStoredBlobs: number | undefined
}

async function sha256File (path: string): Promise<string> {
  const hash = createHash('sha256')
  await pipeline(createReadStream(path, { highWaterMark: 1024 * 1024 }), hash)
  return `sha256:${hash.digest('hex')}`
}

function storePath (dataDir: string, digest: string): string {
  const [alg, hex] = digest.split(':')
  if (alg === undefined || hex === undefined) throw new TypeError(`bad digest ${digest}`)
  return join(dataDir, 'blobs', alg, hex)
}

async function countStored (dataDir: string): Promise<number> {
  let n = 0
  for (const alg of ['sha256', 'sha512']) {
    const r = await runCommand('find', [join(dataDir, 'blobs', alg), '-maxdepth', '1', '-type', 'f'], { timeoutMs: 10_000 })
    if (r.code === 0) n += r.stdout.split('\n').filter((l) => l.length > 0).length
  }
  return n
}


function parseNs (text: string): number[] {
  const ns = text.split(',').map((s) => Number(s.trim()))
  if (ns.length === 0 || ns.some((n) => !Number.isInteger(n) || n < 1 || n > 64)) throw new TypeError(`--n: a comma-separated list of integers in 1..64, got ${text}`)
  return ns
}

async function main (teardown: Teardown): Promise<void> {
  const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false }, n: { type: 'string' }, 'layer-mib': { type: 'string' } } })
  const isQuick = values.quick === true
  const largeLayerMiB = values['layer-mib'] === undefined ? (isQuick ? 32 : 200) : Number(values['layer-mib'])
  const ns = parseNs(values.n ?? (isQuick ? '1,4' : '1,4,16'))
  const startedAt = new Date()
  const machine = describeMachine()
  await assertBuilt()

  const work = await makeTempDir('central-bench')
  teardown.add('work dir', work.cleanup)
  log(`building a test image with a ${largeLayerMiB} MiB layer; starting Distribution`)
  const [registry, image] = await startRegistryAndImage(teardown, work.path, largeLayerMiB)
  const ref = await pushTestImage(image.layoutDir, registry.host, REPO, image.tag)
  await rm(image.layoutDir.replace(/\/layout$/, ''), { recursive: true, force: true })
  const upstream: CountingProxy = await startCountingProxy({ upstreamUrl: registry.url })
  teardown.add('counting proxy', upstream.close)

  const host = hostManifest(image)
  const blobs = [{ digest: host.configDigest, size: host.configSize }, ...host.layers.map((l) => ({ digest: l.digest, size: l.size }))]
  const imageBytes = blobs.reduce((sum, b) => sum + b.size, 0)
  const largePath = `/v2/${REPO}/blobs/${image.largeLayerDigest}`
  log(`pushed ${ref}; the host platform's blobs: ${blobs.length}, ${imageBytes} bytes`)

  /** What each agent's client GETs, in a pull's order, with the bytes each must return. */
  const pullPlan = (agentUrl: string): Array<{ url: string, size: number }> => [
    { url: `${agentUrl}/v2/${REPO}/manifests/${image.tag}`, size: image.indexSize },
    { url: `${agentUrl}/v2/${REPO}/manifests/${host.digest}`, size: host.size },
    ...blobs.map((b) => ({ url: `${agentUrl}/v2/${REPO}/blobs/${b.digest}`, size: b.size })),
  ]

  const startCentral = async (kind: CentralKind, tag: string): Promise<Central> => {
    if (kind === 'distribution') {
      const proxy = await startDistributionProxy({ remoteUrl: upstream.url, logFile: join(work.path, `${tag}.log`) })
      teardown.add(tag, proxy.stop)
      return { kind, url: proxy.url, pid: proxy.process.pid, storedBlobs: async () => undefined, stop: proxy.stop }
    }
    const dataDir = join(work.path, tag)
    const agent = await startDistAgent({
      name: tag, listen: `127.0.0.1:${await freePort()}`, dataDir, logFile: join(work.path, `${tag}.log`),
      args: ['--role', 'mirror', '--allow-cidr', '127.0.0.1/32', '--registry', `${upstream.host}=${upstream.url}`, '--default-registry', upstream.host],
    })
    const stop = async (): Promise<void> => {
      await agent.stop()
      await rm(dataDir, { recursive: true, force: true })
    }
    teardown.add(tag, stop)
    return { kind, url: agent.url, pid: agent.process.pid, storedBlobs: async () => await countStored(dataDir), stop }
  }

  const startAgents = async (n: number, central: Central, tag: string): Promise<DistAgent[]> => {
    const config = join(work.path, `${tag}-agent.yaml`)
    await writeFile(config, `defaultRegistry: "${upstream.host}"\nregistries:\n  "${upstream.host}":\n    endpoint: "${upstream.url}"\n    mirrors:\n      - url: "${central.url}"\n`)
    const agents: DistAgent[] = []
    for (let i = 0; i < n; i += START_BATCH) {
      const batch = await Promise.allSettled(Array.from({ length: Math.min(START_BATCH, n - i) }, async (_, k) => {
        const name = `${tag}-agent-${i + k}`
        const dataDir = join(work.path, name)
        const agent = await startDistAgent({ name, listen: `127.0.0.1:${await freePort()}`, dataDir, args: ['--config', config], logFile: join(work.path, `${name}.log`), readyTimeoutMs: 60_000 })
        teardown.add(name, async () => {
          await agent.stop()
          await rm(dataDir, { recursive: true, force: true })
        })
        return agent
      }))
      for (const r of batch) if (r.status === 'fulfilled') agents.push(r.value)
      for (const r of batch) if (r.status === 'rejected') throw r.reason
    }
    return agents
  }

  /** The agent's copy of every blob, once it is in its store, hashes to its digest. */
  const verifyStores = async (agents: readonly DistAgent[]): Promise<void> => {
    for (const a of agents) {
      for (const b of blobs) {
        const path = storePath(a.dataDir, b.digest)
        await waitFor(async () => (await stat(path)).size === b.size, { timeoutMs: 30_000, intervalMs: 100, what: `${path} to hold ${b.size} bytes` })
        const got = await sha256File(path)
        if (got !== b.digest) throw new Error(`${a.name}: its stored ${b.digest} hashes to ${got}`)
      }
    }
  }

  const runOne = async (kind: CentralKind, n: number): Promise<Run> => {
    const tag = `${kind}-n${n}`
    const central = await startCentral(kind, `${tag}-central`)
    const agents = await startAgents(n, central, tag)
    await sleep(SETTLE_MS)
    upstream.reset()
    const centralIdleRssBytes = await readRss(central.pid) ?? NaN
    const pids = agents.map((a) => a.process.pid)
    const centralCpu0 = await cpuOf(central.pid)
    const agentsCpu0 = (await Promise.all(pids.map(cpuOf))).reduce((s, v) => s + v, 0)
    const selfCpu0 = process.cpuUsage()

    const started = performance.now()
    const perAgentSeconds: number[] = []
    const results = await Promise.all(agents.map(async (a) => {
      const plan = pullPlan(a.url)
      const r = await curlGet(plan.map((p) => p.url), { maxTimeS: TRANSFER_MAX_S, headers: [`Accept: ${ACCEPT}`] })
      perAgentSeconds.push((performance.now() - started) / 1000)
      return { agent: a, plan, r }
    }))
    const wallSeconds = (performance.now() - started) / 1000

    const self = process.cpuUsage(selfCpu0)
    const centralCpuSeconds = await cpuOf(central.pid) - centralCpu0
    const agentsCpuSeconds = (await Promise.all(pids.map(cpuOf))).reduce((s, v) => s + v, 0) - agentsCpu0
    const centralPeakRssBytes = await readPeakRss(central.pid)
    const agentPeakRssBytes = Math.max(...await Promise.all(pids.map(readPeakRss)))
    const bad = results.flatMap(({ agent, plan, r }) => r.flatMap((x: CurlResult, i) => {
      const want = plan[i]?.size
      return x.status === 200 && x.bytes === want ? [] : [`${agent.name}: GET ${x.url}: ${x.status}, ${x.bytes} of ${String(want)} bytes`]
    }))
    if (bad.length > 0 && kind === 'flotilla') throw new Error(`${tag}: incomplete pulls:\n${bad.join('\n')}`)
    if (bad.length > 0) log(`${tag}: incomplete pulls (reported, not fatal for the reference central):\n${bad.join('\n')}`)

    const upstreamBlobBytes = upstream.totalBlobBytes()
    const upstreamLargeGets = upstream.requests.filter((q) => q.method === 'GET' && q.path === largePath && q.status === 200).length
    const kinds = new Map<string, number>()
    for (const q of upstream.requests) {
      const what = `${q.method} ${q.path.includes('/blobs/') ? 'blob' : q.path.includes('/manifests/') ? 'manifest' : q.path}`
      kinds.set(what, (kinds.get(what) ?? 0) + 1)
    }
    const upstreamRequests = [...kinds].sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => `${v} ${k}`).join(', ')
    let agentFallbacks = 0
    for (const a of agents) agentFallbacks += await a.metric('flotilla_upstream_endpoint_requests_total', { endpoint: 'endpoint' })
    const centralStoredBlobs = await central.storedBlobs()
    await verifyStores(agents)
    const run: Run = {
      central: kind, n, wallSeconds, perAgentSeconds, upstreamBlobBytes, upstreamLargeGets, upstreamRequests,
      centralCpuSeconds, centralIdleRssBytes, centralPeakRssBytes, agentsCpuSeconds, agentPeakRssBytes,
      proxyCpuSeconds: (self.user + self.system) / 1e6, agentFallbacks, centralStoredBlobs, incomplete: bad,
    }
    log(`${tag}: ${wallSeconds.toFixed(2)} s; upstream ${(upstreamBlobBytes / imageBytes).toFixed(2)}× the image (${upstreamLargeGets} GET(s) of the layer; upstream requests: ${upstreamRequests}); ` +
      `central CPU ${centralCpuSeconds.toFixed(1)} s, RSS ${formatMiB(centralIdleRssBytes)} → ${formatMiB(centralPeakRssBytes)} MiB; agents CPU ${agentsCpuSeconds.toFixed(1)} s, peak RSS ${formatMiB(agentPeakRssBytes)} MiB; fallbacks ${agentFallbacks}`)

    await Promise.all(agents.map(async (a) => {
      await a.stop()
      await rm(a.dataDir, { recursive: true, force: true })
    }))
    await central.stop()
    return run
  }

  const runs: Run[] = []
  for (const [i, n] of ns.entries()) {
    const order: CentralKind[] = i % 2 === 0 ? ['flotilla', 'distribution'] : ['distribution', 'flotilla']
    for (const kind of order) {
      log(`N = ${n}, central ${CENTRAL_LABEL[kind]}: starting`)
      runs.push(await runOne(kind, n))
    }
  }

  const find = (kind: CentralKind, n: number): Run => {
    const r = runs.find((x) => x.central === kind && x.n === n)
    if (r === undefined) throw new Error('unreachable')
    return r
  }
  const times = (r: Run): string => `${r.upstreamBlobBytes / imageBytes >= 9.995 ? (r.upstreamBlobBytes / imageBytes).toFixed(1) : (r.upstreamBlobBytes / imageBytes).toFixed(2)}×`
  const gets = (r: Run): string => `${r.upstreamLargeGets} GET${r.upstreamLargeGets === 1 ? '' : 's'} of the layer`
  const summary = markdownTable(
    ['Agents N', 'Upstream blob bytes, flotilla central', 'Upstream blob bytes, Distribution proxy', 'Wall s, flotilla central', 'Wall s, Distribution proxy'],
    ns.map((n) => {
      const f = find('flotilla', n)
      const d = find('distribution', n)
      const dWall = d.incomplete.length === 0 ? d.wallSeconds.toFixed(2) : `${d.wallSeconds.toFixed(2)}, **${d.incomplete.length} transfer(s) not completed** (503 from the agent)`
      return [String(n), `**${times(f)}** (${gets(f)})`, `${times(d)} (${gets(d)})`, f.wallSeconds.toFixed(2), dWall]
    }),
  )
  const details = markdownTable(
    ['N', 'Central', 'Wall s', 'Per agent s, min / median / max', 'Upstream blob bytes', 'Upstream requests', 'Central CPU s', 'Central RSS idle → peak, MiB', 'Agents\' CPU s (sum)', 'Agent peak RSS max, MiB', 'Counting proxy CPU s', 'Agent fallbacks to upstream', 'Central store after (manifests and blobs)'],
    runs.map((r) => [
      String(r.n), CENTRAL_LABEL[r.central], r.wallSeconds.toFixed(2),
      `${Math.min(...r.perAgentSeconds).toFixed(2)} / ${median(r.perAgentSeconds).toFixed(2)} / ${Math.max(...r.perAgentSeconds).toFixed(2)}`,
      `${r.upstreamBlobBytes} (${times(r)})`, r.upstreamRequests, r.centralCpuSeconds.toFixed(2),
      `${formatMiB(r.centralIdleRssBytes)} → ${formatMiB(r.centralPeakRssBytes)}`, r.agentsCpuSeconds.toFixed(1), formatMiB(r.agentPeakRssBytes),
      r.proxyCpuSeconds.toFixed(1), String(r.agentFallbacks), r.centralStoredBlobs === undefined ? '—' : `${r.centralStoredBlobs} files`,
    ]),
  )
  const registryVersion = await toolVersion('docker-registry', ['--version'])
  const curlVersion = await toolVersion('curl', ['--version'])
  const nMax = Math.max(...ns)
  const fMax = find('flotilla', nMax)
  const dMax = find('distribution', nMax)
  const report = renderReport({
    title: `Central mirror fan-in: N agents pulling one cold image through a central flotilla or Distribution's proxy${isQuick ? ' (quick run)' : ''}`,
    machine,
    command: invocation(fileURLToPath(import.meta.url)),
    startedAt,
    facts: [
      `Load average at the end: ${(loadavg()[0] ?? 0).toFixed(2)}`,
      `Upstream: ${registryVersion} on 127.0.0.1 holding \`${ref}\` (the test image: multi-arch index, a busybox layer and a ${largeLayerMiB} MiB layer of seeded random bytes), behind the counting proxy (\`test/helpers/counting-proxy.ts\`, in the bench process), which counts the blob bytes it sends. The host platform's content: index ${image.indexSize} B, manifest ${host.size} B, ${blobs.length} blobs of ${imageBytes} bytes; "×" = upstream blob bytes / ${imageBytes}`,
      'Centrals, fresh per run (empty store): `node dist/cli/main.js serve --role mirror --allow-cidr 127.0.0.1/32 --registry UP=http://… --default-registry UP` (plain HTTP, no TLS, no passwords), or `docker-registry serve` with `proxy.remoteurl` = the counting proxy (fresh storage root)',
      `Agents: N \`node dist/cli/main.js serve\` on 127.0.0.1 (no containerd, no p2p: role standalone, the node agent's serving path), each with a fresh data dir and a config whose only registry is the upstream, \`mirrors: [{ url: CENTRAL }]\` before its endpoint; started ${START_BATCH} at a time, then ${SETTLE_MS / 1000} s idle before the pull`,
      `Pull: at one moment, one \`curl\` per agent (${curlVersion.split(' ').slice(0, 2).join(' ')}) GETs through its agent, on one connection and in a pull's order, the index by tag, the host platform's manifest, its config and its ${host.layers.length} layers, bodies to /dev/null; each answer must be 200 with every byte. Wall time: from starting the N curls to the last one's exit. Afterwards every agent's stored copy of every blob is hashed (outside the timing) and must match its digest`,
      'Central CPU: /proc/<pid>/stat before and after the pull; central and agent peak RSS: VmHWM right after the pull (includes the start-up). Counting proxy CPU: the bench process over the pull (it relays every upstream byte). "Agent fallbacks": requests the agents sent to the upstream itself (`flotilla_upstream_endpoint_requests_total{endpoint="endpoint"}`), which must stay 0 for the upstream bytes to be the central\'s',
      `Order: the two centrals alternate which goes first from one N to the next; one run per N and central. Every process shares the same ${machine.nproc} cores: the centrals, the ${nMax} agents, their curls, the upstream and its counting proxy`,
    ],
    table: `${summary}\n\nDetails:\n\n${details}`,
    notes: [
      `At N = ${nMax}: the flotilla central had the upstream send ${times(fMax)} the image (${gets(fMax)}) in ${fMax.wallSeconds.toFixed(1)} s; ` +
      `Distribution's proxy ${times(dMax)} (${gets(dMax)}) in ${dMax.wallSeconds.toFixed(1)} s.`,
    ],
  })
  const path = await writeResult('central.md', report)
  console.log(report)
  log(`written to ${path}`)
}

await runBounded(log, parseArgs({ options: { quick: { type: 'boolean', default: false } }, strict: false }).values.quick === true ? 6 * 60_000 : 14 * 60_000, main)
