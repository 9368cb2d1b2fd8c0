// Warm GET throughput of a large layer that the node's containerd already holds, served by flotilla from its
// own copy in its store, from its store where that copy is a hard link to containerd's file (containerd
// pulled the image through it), by reading containerd's content files directly, by streaming it over
// containerd's gRPC Read, and by Distribution serving the same blob from its own storage. The timed GETs go
// round the servers in turn (each round starting one server further on), so a change in the machine's load
// hits every row alike.
//
//   npx tsx bench/containerd-bench.ts [--quick]      (needs root, containerd, docker-registry, skopeo, umoci, curl)
import { mkdir, readdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'
import { parseArgs } from 'node:util'
import { startContainerd, writeHostsToml, type Containerd } from '../test/helpers/containerd.js'
import { startDistribution, type Distribution } from '../test/helpers/distribution.js'
import { sumMetric } from '../test/helpers/flotilla-agent.js'
import { freePort } from '../test/helpers/free-port.js'
import { makeTempDir } from '../test/helpers/temp-dir.js'
import { buildTestImage, pushTestImage, type TestImage } from '../test/helpers/test-image.js'
import { waitFor } from '../test/helpers/wait-for.js'
import { curlGet, megabytesPerSecond } from './lib-curl.js'
import { assertBuilt, startDistAgent, type DistAgent } from './lib-dist-agent.js'
import { MIB, describeMachine, formatMiB, invocation, markdownTable, median, renderReport, writeResult } from './lib-report.js'
import { RssPeak, readCpuSeconds } from './lib-rss.js'
import { runBounded, type Log, type Teardown } from './lib-teardown.js'

const REPO = 'bench/containerd'
const TIMED_GETS = 9
/**
 * Idle time between the pulls and the GETs. Right after serving containerd's pull an agent served warm GETs
 * about twice as fast (and with a third of the CPU) as the same agent a minute later, whatever file it read.
 */
const SETTLE_MS = 60_000
const RUN_DEADLINE_MS = 6 * 60_000
/** The hard-link and containerd-file rows should be at least this share of the own-store row. */
const TARGET_VS_OWN = 0.9

const log: Log = (message) => { console.error(`[containerd-bench] ${message}`) }

interface Measurement {
  readonly label: string
  readonly runsMBps: readonly number[]
  /** Server CPU seconds (user + system) per GB sent, over the timed GETs. */
  readonly cpuSecondsPerGB: number
  /** containerd's CPU seconds per GB over the same GETs (its work for flotilla's gRPC reads). */
  readonly containerdCpuSecondsPerGB?: number
  readonly peakRssBytes: number
  /** flotilla only: what its own store and upstream counters say afterwards. */
  readonly storeFiles?: readonly string[]
  readonly upstreamBytes?: number
  readonly servedByResult?: string
  /** flotilla only: nlink of the layer's file in its store (0: not there). */
  readonly layerLinks?: number
}

interface Target {
  readonly label: string
  readonly url: string
  /** The server process: its CPU time and RSS are measured. */
  readonly pid: number
}

interface Timed {
  readonly runsMBps: number[]
  cpuSeconds: number
  containerdCpuSeconds: number
  readonly rss: RssPeak
}

/**
 * Runs `fn` with every other server stopped (SIGSTOP) and resumes them afterwards, whatever happens. With five
 * server processes alive on two cores, their idle work (timers, GC) halved the throughput of whichever one was
 * being measured, so the rows measured contention, not the serving path: each server is timed alone.
 */
async function alone<T> (t: Target, all: readonly Target[], fn: () => Promise<T>): Promise<T> {
  const others = all.filter((o) => o.pid !== t.pid)
  const stopped: number[] = []
  try {
    for (const o of others) {
      process.kill(o.pid, 'SIGSTOP')
      stopped.push(o.pid)
    }
    return await fn()
  } finally {
    for (const pid of stopped) {
      try {
        process.kill(pid, 'SIGCONT')
      } catch {
        // Gone already: the teardown will say so.
      }
    }
  }
}

/**
 * One warm-up GET per target, then `TIMED_GETS` rounds of one GET per target in turn, round i starting at
 * target i; each must return the whole blob, and each is timed with the other servers paused (`alone`). CPU
 * time is counted around each target's own GETs, so the rows do not share it.
 */
async function measureAll (targets: readonly Target[], size: number, containerdPid: number): Promise<Array<Omit<Measurement, 'storeFiles' | 'upstreamBytes' | 'servedByResult' | 'layerLinks'>>> {
  const get = async (t: Target): Promise<number> => {
    const [r] = await curlGet([t.url], { maxTimeS: 60 })
    if (r === undefined || r.status !== 200 || r.bytes !== size) throw new Error(`${t.label}: GET ${t.url}: status ${r?.status}, ${r?.bytes} of ${size} bytes`)
    return r.ms
  }
  for (const t of targets) await alone(t, targets, async () => await get(t))
  const timed: Timed[] = targets.map((t) => ({ runsMBps: [], cpuSeconds: 0, containerdCpuSeconds: 0, rss: new RssPeak([t.pid]).start() }))
  for (let i = 0; i < TIMED_GETS; i++) {
    for (let k = 0; k < targets.length; k++) {
      const j = (i + k) % targets.length
      const [t, m] = [targets[j], timed[j]]
      if (t === undefined || m === undefined) throw new Error('unreachable')
      const cpuBefore = await readCpuSeconds(t.pid) ?? NaN
      const ctrdBefore = await readCpuSeconds(containerdPid) ?? NaN
      m.runsMBps.push(megabytesPerSecond(size, await alone(t, targets, async () => await get(t))))
      m.cpuSeconds += (await readCpuSeconds(t.pid) ?? NaN) - cpuBefore
      m.containerdCpuSeconds += (await readCpuSeconds(containerdPid) ?? NaN) - ctrdBefore
    }
  }
  const gb = TIMED_GETS * size / 1e9
  const results = []
  for (const [j, t] of targets.entries()) {
    const m = timed[j]
    if (m === undefined) throw new Error('unreachable')
    log(`${t.label}: ${m.runsMBps.map((v) => v.toFixed(0)).join(', ')} MB/s`)
    results.push({
      label: t.label, runsMBps: m.runsMBps, peakRssBytes: await m.rss.stop(),
      cpuSecondsPerGB: m.cpuSeconds / gb,
      containerdCpuSecondsPerGB: m.containerdCpuSeconds / gb,
    })
  }
  return results
}

async function storeFiles (dataDir: string): Promise<string[]> {
  const files: string[] = []
  for (const alg of ['sha256', 'sha512']) {
    try {
      files.push(...(await readdir(join(dataDir, 'blobs', alg))).map((f) => `${alg}:${f}`))
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
    }
  }
  return files
}

/** Hard links to the layer's file in the agent's store; 0 when the store does not hold it. */
async function layerLinks (dataDir: string, digest: string): Promise<number> {
  const [alg, hex] = digest.split(':')
  if (alg === undefined || hex === undefined) throw new TypeError(`bad digest ${digest}`)
  try {
    return (await stat(join(dataDir, 'blobs', alg, hex))).nlink
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
    return 0
  }
}

/** A flotilla agent in front of the Distribution, with `extraArgs` (containerd's flags or none). */
async function startFlotilla (o: {
  name: string, teardown: Teardown, workDir: string, registry: Distribution, extraArgs: readonly string[],
}): Promise<DistAgent> {
  const agent = await startDistAgent({
    name: `flotilla-${o.name}`, listen: `127.0.0.1:${await freePort()}`, dataDir: join(o.workDir, `data-${o.name}`),
    args: ['--registry', `${o.registry.host}=${o.registry.url}`, '--default-registry', o.registry.host, ...o.extraArgs],
    logFile: join(o.workDir, `agent-${o.name}.log`),
  })
  o.teardown.add(agent.name, agent.stop)
  return agent
}

/** What an agent's store and counters say after the timed GETs. */
async function flotillaFacts (agent: DistAgent, digest: string): Promise<Pick<Measurement, 'storeFiles' | 'upstreamBytes' | 'servedByResult' | 'layerLinks'>> {
  const metrics = await agent.metricsText()
  const results = ['hit', 'peer', 'upstream', 'stale', 'miss', 'error']
    .map((r) => [r, sumMetric(metrics, 'flotilla_requests_total', { kind: 'blob', result: r })] as const)
    .filter(([, n]) => n > 0)
  return {
    storeFiles: await storeFiles(agent.dataDir),
    layerLinks: await layerLinks(agent.dataDir, digest),
    upstreamBytes: sumMetric(metrics, 'flotilla_upstream_bytes_total'),
    servedByResult: results.length === 0 ? 'none counted' : results.map(([r, n]) => `${r} ${n}`).join(', '),
  }
}

/** Starts everything at once; registers what started for teardown even when something else failed. */
async function startAll (teardown: Teardown, workDir: string, largeLayerMiB: number): Promise<[Distribution, TestImage, Containerd]> {
  const [registry, image, ctrd] = await Promise.allSettled([
    startDistribution(),
    buildTestImage({ workDir, largeLayerMiB }),
    startContainerd({ namespace: 'k8s.io' }),
  ])
  if (registry.status === 'fulfilled') teardown.add('distribution', registry.value.stop)
  if (ctrd.status === 'fulfilled') teardown.add('containerd', ctrd.value.stop)
  for (const r of [registry, image, ctrd]) if (r.status === 'rejected') throw r.reason
  if (registry.status !== 'fulfilled' || image.status !== 'fulfilled' || ctrd.status !== 'fulfilled') throw new Error('unreachable')
  return [registry.value, image.value, ctrd.value]
}

async function main (teardown: Teardown): Promise<void> {
  const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false } } })
  const isQuick = values.quick === true
  const largeLayerMiB = isQuick ? 64 : 200
  const startedAt = new Date()
  const machine = describeMachine()
  await assertBuilt()

  const work = await makeTempDir('containerd-bench')
  teardown.add('work dir', work.cleanup)
  log(`building a test image with a ${largeLayerMiB} MiB layer; starting Distribution and containerd`)
  const [registry, image, ctrd] = await startAll(teardown, work.path, largeLayerMiB)
  const ref = await pushTestImage(image.layoutDir, registry.host, REPO, image.tag)
  const size = image.largeLayerSize
  const digest = image.largeLayerDigest
  const blobPath = `/v2/${REPO}/blobs/${digest}`

  // containerd pulls the image through the "link" agent, which keeps a copy of what it served and then
  // replaces it with a hard link to containerd's file; the "own" agent, without containerd, pulls the layer once.
  const own = await startFlotilla({ name: 'own', teardown, workDir: work.path, registry, extraArgs: [] })
  const containerdArgs = ['--containerd-socket', ctrd.socket, '--containerd-namespace', ctrd.namespace]
  const linkDataDir = join(work.path, 'data-link')
  await mkdir(linkDataDir, { recursive: true })
  if ((await stat(ctrd.root)).dev !== (await stat(linkDataDir)).dev) throw new Error(`containerd's root ${ctrd.root} and ${linkDataDir} are on different filesystems`)
  const link = await startFlotilla({ name: 'link', teardown, workDir: work.path, registry, extraArgs: [...containerdArgs, '--containerd-content-dir', ctrd.contentDir] })
  await writeHostsToml(ctrd.certsDir, registry.host, { server: registry.url, mirrors: [{ url: link.url, dialTimeout: '200ms' }] })
  log(`pulling ${ref} into containerd (namespace ${ctrd.namespace}, snapshotter ${ctrd.snapshotter}) through ${link.url}`)
  await ctrd.pull(ref, { timeoutMs: 180_000 })
  const held = await stat(ctrd.blobPath(digest))
  if (held.size !== size) throw new Error(`containerd holds ${held.size} bytes of the large layer, expected ${size}`)
  const [cold] = await curlGet([`${own.url}${blobPath}`], { maxTimeS: 60 })
  if (cold?.status !== 200 || cold.bytes !== size) throw new Error(`cold GET through ${own.url}: status ${cold?.status}, ${cold?.bytes} of ${size} bytes`)
  // The client has its last byte once the bytes verified; the store's fsync and rename may still be under way.
  await waitFor(async () => await layerLinks(own.dataDir, digest) === 1, { timeoutMs: 30_000, what: 'the own-store agent keeping its own copy of the layer' })
  await waitFor(async () => await layerLinks(link.dataDir, digest) === 2,
    { timeoutMs: 30_000, intervalMs: 200, what: `the layer in ${link.dataDir} to become a hard link to containerd's file (nlink 2)` })
  const linkedIno = (await stat(join(link.dataDir, 'blobs', 'sha256', digest.slice(7)))).ino
  if (linkedIno !== held.ino) throw new Error("the layer in the link agent's store has nlink 2 but is not containerd's file")

  const file = await startFlotilla({ name: 'file', teardown, workDir: work.path, registry, extraArgs: [...containerdArgs, '--containerd-content-dir', ctrd.contentDir] })
  const grpc = await startFlotilla({ name: 'grpc', teardown, workDir: work.path, registry, extraArgs: containerdArgs })
  const agents = [
    { label: 'flotilla, own store', agent: own },
    { label: 'flotilla, own store as a hard link to containerd\'s file', agent: link },
    { label: 'flotilla, containerd content files', agent: file },
    { label: 'flotilla, containerd gRPC Read', agent: grpc },
  ]
  log(`all agents ready; ${SETTLE_MS / 1000} s idle before the GETs`)
  await sleep(SETTLE_MS)
  const measured = await measureAll([
    ...agents.map(({ label, agent }) => ({ label, url: `${agent.url}${blobPath}`, pid: agent.process.pid })),
    { label: 'Distribution (own storage)', url: `${registry.url}${blobPath}`, pid: registry.process.pid },
  ], size, ctrd.process.pid)
  const rows: Measurement[] = []
  for (const [i, m] of measured.entries()) {
    const agent = agents[i]?.agent
    rows.push(agent === undefined ? { ...m, containerdCpuSecondsPerGB: undefined } : { ...m, ...await flotillaFacts(agent, digest) })
  }
  const [ownRow, linkRow, fileRow, grpcRow, distRow] = rows
  if (ownRow === undefined || linkRow === undefined || fileRow === undefined || grpcRow === undefined || distRow === undefined) throw new Error('unreachable')

  const distMedian = median(distRow.runsMBps)
  const ownMedian = median(ownRow.runsMBps)
  const table = markdownTable(
    ['Served by', `Warm GET MB/s (median of ${TIMED_GETS})`, 'vs own store', 'vs Distribution', 'Runs, MB/s', 'Server CPU s per GB', 'containerd CPU s per GB', 'Server peak RSS, MiB', 'flotilla store after', 'flotilla upstream bytes', 'flotilla blob requests'],
    rows.map((m: Measurement) => [
      m.label,
      median(m.runsMBps).toFixed(0),
      `${(median(m.runsMBps) / ownMedian).toFixed(2)}×`,
      `${(median(m.runsMBps) / distMedian).toFixed(2)}×`,
      m.runsMBps.map((v) => v.toFixed(0)).join(', '),
      m.cpuSecondsPerGB.toFixed(2),
      m.containerdCpuSecondsPerGB?.toFixed(2) ?? '—',
      formatMiB(m.peakRssBytes),
      m.storeFiles === undefined ? '—' : m.storeFiles.length === 0 ? 'empty' : `${m.storeFiles.length} blob(s), layer nlink ${m.layerLinks ?? 0}`,
      m.upstreamBytes === undefined ? '—' : String(m.upstreamBytes),
      m.servedByResult ?? '—',
    ]),
  )
  const isStoreEmpty = [fileRow, grpcRow].every((m) => m.storeFiles?.length === 0 && m.upstreamBytes === 0)
  const vsOwn = (m: Measurement): string => {
    const ratio = median(m.runsMBps) / ownMedian
    return `${m.label} ${ratio.toFixed(2)}× (${ratio >= TARGET_VS_OWN ? 'met' : '**not met**'})`
  }
  const report = renderReport({
    title: `flotilla serving containerd's content: warm GET throughput${isQuick ? ' (quick run)' : ''}`,
    machine,
    command: invocation(fileURLToPath(import.meta.url)),
    startedAt,
    facts: [
      `Blob: the test image's large layer, ${size} bytes (${(size / MIB).toFixed(0)} MiB) of seeded random data, pulled into containerd ${ctrd.namespace} (snapshotter ${ctrd.snapshotter}) from Distribution 2.8`,
      `Client: curl to /dev/null over loopback (counts bytes only), ${SETTLE_MS / 1000} s idle after the pulls, one warm-up GET per server, then ${TIMED_GETS} rounds of one GET per server in turn, each GET with the other servers paused (SIGSTOP; containerd keeps running); MB = 10^6 bytes`,
      'flotilla has the upstream Distribution configured as its registry, so a containerd miss would show as upstream bytes and store files',
      'own store: an agent without containerd that pulled the layer from Distribution once (a curl GET); hard link: the agent containerd pulled the image through (hosts.toml mirror), its copy of the layer replaced by a hard link to containerd\'s file (nlink 2, same inode, checked before the GETs)',
    ],
    table,
    notes: [
      `Target: served from containerd's store (hard link or content file) at least ${TARGET_VS_OWN.toFixed(2)}× the own-store row (within ${Math.round(100 * (1 - TARGET_VS_OWN))} %): ${vsOwn(linkRow)}; ${vsOwn(fileRow)}.`,
      `The containerd-file and gRPC agents' own stores stayed empty and nothing came to them from upstream: ${isStoreEmpty ? 'yes' : '**no**'}.`,
    ],
  })
  const path = await writeResult('containerd.md', report)
  console.log(report)
  log(`written to ${path}`)
}

await runBounded(log, RUN_DEADLINE_MS, main)
