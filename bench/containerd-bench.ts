// Warm GET throughput of a large layer that the node's containerd already holds, served by flotilla
// reading containerd's content files directly, by flotilla streaming it over containerd's gRPC Read, and by
// Distribution serving the same blob from its own storage.
//
//   npx tsx bench/containerd-bench.ts [--quick]      (needs root, containerd, docker-registry, skopeo, umoci, curl)
import { readdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { startContainerd, type Containerd } from '../test/helpers/containerd.js'
import { startDistribution, type Distribution } from '../test/helpers/distribution.js'
import { sumMetric } from '../test/helpers/flotilla-agent.js'
import { freePort } from '../test/helpers/free-port.js'
import { makeTempDir } from '../test/helpers/temp-dir.js'
import { buildTestImage, pushTestImage, type TestImage } from '../test/helpers/test-image.js'
import { curlGet, megabytesPerSecond } from './lib-curl.js'
import { assertBuilt, startDistAgent, type DistAgent } from './lib-dist-agent.js'
import { MIB, describeMachine, formatMiB, invocation, markdownTable, median, renderReport, writeResult } from './lib-report.js'
import { RssPeak, readCpuSeconds } from './lib-rss.js'
import { runBounded, type Log, type Teardown } from './lib-teardown.js'

const REPO = 'bench/containerd'
const TIMED_GETS = 5
const RUN_DEADLINE_MS = 6 * 60_000

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
}

/** One warm-up GET, then `TIMED_GETS` sequential ones; each must return the whole blob. */
async function measure (label: string, url: string, size: number, pid: number, containerdPid?: number): Promise<Omit<Measurement, 'storeFiles' | 'upstreamBytes' | 'servedByResult'>> {
  const once = async (): Promise<number> => {
    const [r] = await curlGet([url], { maxTimeS: 60 })
    if (r === undefined || r.status !== 200 || r.bytes !== size) throw new Error(`${label}: GET ${url}: status ${r?.status}, ${r?.bytes} of ${size} bytes`)
    return r.ms
  }
  await once()
  const rss = new RssPeak([pid]).start()
  const cpuBefore = await readCpuSeconds(pid) ?? NaN
  const ctrdBefore = containerdPid === undefined ? NaN : await readCpuSeconds(containerdPid) ?? NaN
  const runsMBps: number[] = []
  for (let i = 0; i < TIMED_GETS; i++) runsMBps.push(megabytesPerSecond(size, await once()))
  const cpuAfter = await readCpuSeconds(pid) ?? NaN
  const ctrdAfter = containerdPid === undefined ? NaN : await readCpuSeconds(containerdPid) ?? NaN
  const peakRssBytes = await rss.stop()
  log(`${label}: ${runsMBps.map((v) => v.toFixed(0)).join(', ')} MB/s`)
  const gb = TIMED_GETS * size / 1e9
  return {
    label, runsMBps, peakRssBytes,
    cpuSecondsPerGB: (cpuAfter - cpuBefore) / gb,
    containerdCpuSecondsPerGB: containerdPid === undefined ? undefined : (ctrdAfter - ctrdBefore) / gb,
  }
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

async function measureFlotilla (o: {
  label: string, teardown: Teardown, workDir: string, registry: Distribution, ctrd: Containerd, image: TestImage, isFileRead: boolean,
}): Promise<Measurement> {
  const dataDir = join(o.workDir, `data-${o.isFileRead ? 'file' : 'grpc'}`)
  const args = ['--registry', `${o.registry.host}=${o.registry.url}`, '--default-registry', o.registry.host,
    '--containerd-socket', o.ctrd.socket, '--containerd-namespace', o.ctrd.namespace]
  if (o.isFileRead) args.push('--containerd-content-dir', o.ctrd.contentDir)
  const agent: DistAgent = await startDistAgent({
    name: `flotilla-${o.isFileRead ? 'file' : 'grpc'}`, listen: `127.0.0.1:${await freePort()}`, dataDir, args,
    logFile: join(o.workDir, `agent-${o.isFileRead ? 'file' : 'grpc'}.log`),
  })
  o.teardown.add(agent.name, agent.stop)
  try {
    const url = `${agent.url}/v2/${REPO}/blobs/${o.image.largeLayerDigest}`
    const m = await measure(o.label, url, o.image.largeLayerSize, agent.process.pid, o.ctrd.process.pid)
    const metrics = await agent.metricsText()
    const results = ['hit', 'peer', 'upstream', 'stale', 'miss', 'error']
      .map((r) => [r, sumMetric(metrics, 'flotilla_requests_total', { kind: 'blob', result: r })] as const)
      .filter(([, n]) => n > 0)
    return {
      ...m,
      storeFiles: await storeFiles(dataDir),
      upstreamBytes: sumMetric(metrics, 'flotilla_upstream_bytes_total'),
      servedByResult: results.length === 0 ? 'none counted' : results.map(([r, n]) => `${r} ${n}`).join(', '),
    }
  } finally {
    await agent.stop()
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
  log(`pulling ${ref} into containerd (namespace ${ctrd.namespace}, snapshotter ${ctrd.snapshotter})`)
  await ctrd.pull(ref, { timeoutMs: 180_000 })
  const held = await stat(ctrd.blobPath(image.largeLayerDigest))
  if (held.size !== image.largeLayerSize) throw new Error(`containerd holds ${held.size} bytes of the large layer, expected ${image.largeLayerSize}`)

  const size = image.largeLayerSize
  const file = await measureFlotilla({ label: 'flotilla, containerd content files', teardown, workDir: work.path, registry, ctrd, image, isFileRead: true })
  const grpc = await measureFlotilla({ label: 'flotilla, containerd gRPC Read', teardown, workDir: work.path, registry, ctrd, image, isFileRead: false })
  const dist = await measure('Distribution (own storage)', `${registry.url}/v2/${REPO}/blobs/${image.largeLayerDigest}`, size, registry.process.pid)
  const rows = [file, grpc, dist]

  const distMedian = median(dist.runsMBps)
  const table = markdownTable(
    ['Served by', `Warm GET MB/s (median of ${TIMED_GETS})`, 'vs Distribution', 'Runs, MB/s', 'Server CPU s per GB', 'containerd CPU s per GB', 'Server peak RSS, MiB', 'flotilla store after', 'flotilla upstream bytes', 'flotilla blob requests'],
    rows.map((m: Measurement) => [
      m.label,
      median(m.runsMBps).toFixed(0),
      `${(median(m.runsMBps) / distMedian).toFixed(2)}×`,
      m.runsMBps.map((v) => v.toFixed(0)).join(', '),
      m.cpuSecondsPerGB.toFixed(2),
      m.containerdCpuSecondsPerGB?.toFixed(2) ?? '—',
      formatMiB(m.peakRssBytes),
      m.storeFiles === undefined ? '—' : m.storeFiles.length === 0 ? 'empty' : `**${m.storeFiles.length} blob(s)**`,
      m.upstreamBytes === undefined ? '—' : String(m.upstreamBytes),
      m.servedByResult ?? '—',
    ]),
  )
  const isStoreEmpty = [file, grpc].every((m) => m.storeFiles?.length === 0 && m.upstreamBytes === 0)
  const report = renderReport({
    title: `flotilla serving containerd's content: warm GET throughput${isQuick ? ' (quick run)' : ''}`,
    machine,
    command: invocation(fileURLToPath(import.meta.url)),
    startedAt,
    facts: [
      `Blob: the test image's large layer, ${size} bytes (${(size / MIB).toFixed(0)} MiB) of seeded random data, pulled into containerd ${ctrd.namespace} (snapshotter ${ctrd.snapshotter}) from Distribution 2.8`,
      `Client: curl to /dev/null over loopback (counts bytes only), one warm-up GET then ${TIMED_GETS} sequential GETs per server; MB = 10^6 bytes`,
      'flotilla has the upstream Distribution configured as its registry, so a containerd miss would show as upstream bytes and store files',
    ],
    table,
    notes: [
      `flotilla's own store stayed empty and nothing came from upstream: ${isStoreEmpty ? 'yes' : '**no**'}.`,
    ],
  })
  const path = await writeResult('containerd.md', report)
  console.log(report)
  log(`written to ${path}`)
}

await runBounded(log, RUN_DEADLINE_MS, main)
