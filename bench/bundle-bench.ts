// Air-gap bundles (issue 12, check 5): throughput and peak RSS of `flotilla save` and `flotilla load` for a bundle
// of about 1 GB, next to the tools people use today on the same content: `skopeo copy docker://… oci-archive:…`
// from the same Distribution, and `ctr images import` of the same bundle file into a fresh containerd. Runs of the
// two tools of a step alternate (round i starts with the other tool), so a change in the machine's load hits both.
// Every command runs under GNU time (`/usr/bin/time`), whose figures are the kernel's rusage of the process at its
// exit: exact peak RSS (ru_maxrss, i.e. VmHWM) and CPU seconds, no sampling.
//
//   npx tsx bench/bundle-bench.ts [--quick]      (needs root, containerd, ctr, docker-registry, skopeo, umoci, GNU time)
import { mkdir, readFile, rm, stat } from 'node:fs/promises'
import { loadavg } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import { parseArgs } from 'node:util'
import { startContainerd } from '../test/helpers/containerd.js'
import { freePort } from '../test/helpers/free-port.js'
import { CommandError, formatCommand, runCommand, runCommandChecked } from '../test/helpers/run-command.js'
import { makeTempDir } from '../test/helpers/temp-dir.js'
import { OCI_INDEX, pushTestImage, type TestImage } from '../test/helpers/test-image.js'
import { DIST_ENTRY, assertBuilt, startDistAgent } from './lib-dist-agent.js'
import { MIB, describeMachine, formatMiB, invocation, markdownTable, median, renderReport, writeResult } from './lib-report.js'
import { cpuOf, readPeakRss, readRss } from './lib-rss.js'
import { startRegistryAndImage, toolVersion } from './lib-fixture.js'
import { runBounded, type Log, type Teardown } from './lib-teardown.js'

const REPO = 'bench/bundle'
const TIME_BIN = '/usr/bin/time'
/** Per timed command. */
const COMMAND_TIMEOUT_MS = 5 * 60_000

const log: Log = (message) => { console.error(`[bundle-bench] ${message}`) }

/** What GNU time says about one finished command, plus our own wall clock around it. */
interface Timed {
  readonly seconds: number
  /** user + system CPU seconds of the command (and any children it waited for). */
  readonly cpuSeconds: number
  /** ru_maxrss: the process's peak resident set. */
  readonly peakRssBytes: number
  readonly stdout: string
}

/** One run of one tool. */
interface Run extends Timed {
  /** Bytes of the bundle written (save) or read (load). */
  readonly bytes: number
  /** CPU seconds the server used during the command: Distribution for save, the agent or containerd for load. */
  readonly serverCpuSeconds: number
  /** The server's VmHWM right after the command: fresh agents and containerds only. */
  readonly serverPeakRssBytes?: number
  /** The server's VmRSS just before the command. */
  readonly serverIdleRssBytes?: number
}

interface Row {
  readonly step: 'save' | 'load'
  readonly label: string
  readonly command: string
  readonly server: string
  readonly isReference: boolean
  readonly runs: Run[]
}

/** Runs `cmd` under GNU time; throws a CommandError unless it exits 0. */
async function timed (cmd: string, args: readonly string[], statsFile: string, env?: NodeJS.ProcessEnv): Promise<Timed> {
  const argv = ['-f', '%e %U %S %M', '-o', statsFile, cmd, ...args]
  const started = performance.now()
  const r = await runCommand(TIME_BIN, argv, { timeoutMs: COMMAND_TIMEOUT_MS, ...(env === undefined ? {} : { env }) })
  const seconds = (performance.now() - started) / 1000
  if (r.code !== 0 || r.isTimedOut) throw new CommandError(formatCommand(cmd, args), r)
  // A failing command makes time write "Command exited with non-zero status N" first: the figures are the last line.
  const last = (await readFile(statsFile, 'utf8')).trim().split('\n').pop() ?? ''
  const [, user, system, maxRssKiB] = last.split(' ').map(Number)
  if (user === undefined || system === undefined || maxRssKiB === undefined || [user, system, maxRssKiB].some(Number.isNaN)) throw new Error(`${TIME_BIN}: unexpected output ${JSON.stringify(last)}`)
  return { seconds, cpuSeconds: user + system, peakRssBytes: maxRssKiB * 1024, stdout: r.stdout }
}

/** Dirty pages of the previous run are written back before the next one starts, outside the timing. */
async function settleDisk (): Promise<void> {
  await runCommandChecked('sync', [], { timeoutMs: 120_000 })
}

async function fileSize (path: string): Promise<number> {
  return (await stat(path)).size
}

/** The layers' and configs' bytes of the image (the index's blobs, each once), and its manifests. */
function contentBytes (image: TestImage): number {
  const sizes = new Map<string, number>()
  for (const m of image.manifests) {
    sizes.set(m.digest, m.size)
    sizes.set(m.configDigest, m.configSize)
    for (const l of m.layers) sizes.set(l.digest, l.size)
  }
  let total = image.indexSize
  for (const n of sizes.values()) total += n
  return total
}


function fmtRange (values: readonly number[], digits: number): string {
  const med = median(values).toFixed(digits)
  if (values.length < 2) return med
  return `${med} (${Math.min(...values).toFixed(digits)}–${Math.max(...values).toFixed(digits)})`
}

function mbps (r: Run): number {
  return r.bytes / 1e6 / r.seconds
}

async function main (teardown: Teardown): Promise<void> {
  const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false } } })
  const isQuick = values.quick === true
  // 954 MiB of random data: a 1.0 GB (10^9 bytes) layer, plus busybox's layer and the metadata.
  const largeLayerMiB = isQuick ? 96 : 954
  const runs = isQuick ? 1 : 3
  const startedAt = new Date()
  const machine = describeMachine()
  await assertBuilt()

  const work = await makeTempDir('bundle-bench')
  teardown.add('work dir', work.cleanup)
  const statsFile = join(work.path, 'time.txt')
  log(`building a test image with a ${largeLayerMiB} MiB layer; starting Distribution`)
  const [registry, image] = await startRegistryAndImage(teardown, work.path, largeLayerMiB)
  const ref = await pushTestImage(image.layoutDir, registry.host, REPO, image.tag)
  // The build's own copies (layout, large.bin) are not needed any more: half the disk traffic of a run is the bundle.
  await rm(image.layoutDir.replace(/\/layout$/, ''), { recursive: true, force: true })
  const content = contentBytes(image)
  log(`pushed ${ref}: ${content} bytes of content (index, 2 manifests, 2 configs, ${image.manifests[0]?.layers.length ?? 0} shared layers)`)

  const save: Row = {
    step: 'save', label: 'flotilla save (cold staging cache)', isReference: false, server: 'Distribution', runs: [],
    command: `node dist/cli/main.js save -o FILE --registry ${registry.host}=URL --cache-dir FRESH_DIR ${ref}`,
  }
  const skopeo: Row = {
    step: 'save', label: 'skopeo copy → oci-archive', isReference: true, server: 'Distribution', runs: [],
    command: `skopeo --insecure-policy copy --quiet --all --preserve-digests --src-tls-verify=false docker://${ref} oci-archive:FILE:${ref}`,
  }
  const load: Row = {
    step: 'load', label: 'flotilla load → fresh agent', isReference: false, server: 'agent', runs: [],
    command: 'node dist/cli/main.js load FILE --agent http://127.0.0.1:PORT',
  }
  const ctrImport: Row = {
    step: 'load', label: 'ctr images import --no-unpack → fresh containerd', isReference: true, server: 'containerd', runs: [],
    command: 'ctr -n k8s.io images import --all-platforms --no-unpack FILE',
  }

  // The bundle both loaders read: flotilla's first save.
  const bundle = join(work.path, 'bundle.tar')

  const runSave = async (i: number): Promise<void> => {
    const out = i === 0 ? bundle : join(work.path, `save-${i}.tar`)
    const cacheDir = join(work.path, `cache-${i}`)
    await settleDisk()
    const cpu0 = await cpuOf(registry.process.pid)
    const t = await timed(process.execPath, [DIST_ENTRY, 'save', '-o', out, '--registry', `${registry.host}=${registry.url}`, '--cache-dir', cacheDir, ref], statsFile)
    const serverCpuSeconds = await cpuOf(registry.process.pid) - cpu0
    if (!/^saved 1 image\(s\)/.test(t.stdout)) throw new Error(`flotilla save: unexpected output ${t.stdout}`)
    const bytes = await fileSize(out)
    save.runs.push({ ...t, bytes, serverCpuSeconds })
    log(`save ${i + 1}, flotilla: ${bytes} bytes in ${t.seconds.toFixed(2)} s, ${(bytes / 1e6 / t.seconds).toFixed(0)} MB/s, peak RSS ${formatMiB(t.peakRssBytes)} MiB`)
    await rm(cacheDir, { recursive: true, force: true })
    if (out !== bundle) await rm(out, { force: true })
  }

  const runSkopeo = async (i: number): Promise<void> => {
    const out = join(work.path, `skopeo-${i}.tar`)
    // skopeo stages an oci-archive in a temp dir (TMPDIR, else /var/tmp) before it writes the tar: keep it on our disk and ours to remove.
    const tmp = join(work.path, `skopeo-tmp-${i}`)
    await mkdir(tmp)
    await settleDisk()
    const cpu0 = await cpuOf(registry.process.pid)
    const t = await timed('skopeo', ['--insecure-policy', 'copy', '--quiet', '--all', '--preserve-digests', '--src-tls-verify=false', `docker://${ref}`, `oci-archive:${out}:${ref}`], statsFile, { ...process.env, TMPDIR: tmp })
    const serverCpuSeconds = await cpuOf(registry.process.pid) - cpu0
    const bytes = await fileSize(out)
    skopeo.runs.push({ ...t, bytes, serverCpuSeconds })
    log(`save ${i + 1}, skopeo: ${bytes} bytes in ${t.seconds.toFixed(2)} s, ${(bytes / 1e6 / t.seconds).toFixed(0)} MB/s, peak RSS ${formatMiB(t.peakRssBytes)} MiB`)
    await rm(out, { force: true })
    await rm(tmp, { recursive: true, force: true })
  }

  const runLoad = async (i: number): Promise<void> => {
    const dataDir = join(work.path, `agent-data-${i}`)
    const agent = await startDistAgent({
      name: `flotilla-load-${i}`, listen: `127.0.0.1:${await freePort()}`, dataDir,
      args: ['--registry', `${registry.host}=${registry.url}`, '--default-registry', registry.host],
      logFile: join(work.path, `agent-${i}.log`),
    })
    teardown.add(agent.name, agent.stop)
    try {
      await sleep(1000) // past its start-up work
      const pid = agent.process.pid
      await settleDisk()
      const serverIdleRssBytes = await readRss(pid) ?? NaN
      const cpu0 = await cpuOf(pid)
      const t = await timed(process.execPath, [DIST_ENTRY, 'load', bundle, '--agent', agent.url], statsFile)
      const serverCpuSeconds = await cpuOf(pid) - cpu0
      const serverPeakRssBytes = await readPeakRss(pid)
      if (!/^loaded 1 image\(s\)/.test(t.stdout)) throw new Error(`flotilla load: unexpected output ${t.stdout}`)
      const path = ref.slice(registry.host.length + 1).replace(':', '/manifests/')
      const head = await fetch(`${agent.url}/v2/${path}`, { method: 'HEAD', headers: { accept: OCI_INDEX }, signal: AbortSignal.timeout(10_000) })
      if (head.headers.get('docker-content-digest') !== image.indexDigest) throw new Error(`after the load the agent answers ${head.status} ${head.headers.get('docker-content-digest') ?? ''} for ${ref}, expected ${image.indexDigest}`)
      const bytes = await fileSize(bundle)
      load.runs.push({ ...t, bytes, serverCpuSeconds, serverPeakRssBytes, serverIdleRssBytes })
      log(`load ${i + 1}, flotilla: ${t.seconds.toFixed(2)} s, ${(bytes / 1e6 / t.seconds).toFixed(0)} MB/s, CLI peak RSS ${formatMiB(t.peakRssBytes)} MiB, agent ${formatMiB(serverIdleRssBytes)} → ${formatMiB(serverPeakRssBytes)} MiB`)
    } finally {
      await agent.stop()
      await rm(dataDir, { recursive: true, force: true })
    }
  }

  const runCtr = async (i: number): Promise<void> => {
    const ctrd = await startContainerd({ namespace: 'k8s.io' })
    teardown.add(`containerd ${i}`, ctrd.stop)
    try {
      await sleep(1000)
      const pid = ctrd.process.pid
      await settleDisk()
      const serverIdleRssBytes = await readRss(pid) ?? NaN
      const cpu0 = await cpuOf(pid)
      const t = await timed('ctr', ['--address', ctrd.socket, '-n', ctrd.namespace, 'images', 'import', '--all-platforms', '--no-unpack', bundle], statsFile)
      const serverCpuSeconds = await cpuOf(pid) - cpu0
      const serverPeakRssBytes = await readPeakRss(pid)
      const ls = (await ctrd.ctr(['images', 'ls', '-q'], { timeoutMs: 10_000 })).stdout.split('\n')
      if (!ls.includes(ref)) throw new Error(`ctr images ls after the import: ${ls.join(' ')}; ${ref} missing`)
      const held = await fileSize(ctrd.blobPath(image.largeLayerDigest))
      if (held !== image.largeLayerSize) throw new Error(`containerd holds ${held} bytes of the large layer, expected ${image.largeLayerSize}`)
      const bytes = await fileSize(bundle)
      ctrImport.runs.push({ ...t, bytes, serverCpuSeconds, serverPeakRssBytes, serverIdleRssBytes })
      log(`load ${i + 1}, ctr import: ${t.seconds.toFixed(2)} s, ${(bytes / 1e6 / t.seconds).toFixed(0)} MB/s, ctr peak RSS ${formatMiB(t.peakRssBytes)} MiB, containerd ${formatMiB(serverIdleRssBytes)} → ${formatMiB(serverPeakRssBytes)} MiB`)
    } finally {
      await ctrd.stop()
    }
  }

  for (let i = 0; i < runs; i++) {
    // Round 0 starts with flotilla: its first bundle is the one both loaders read.
    const pair = i % 2 === 0 ? [runSave, runSkopeo] : [runSkopeo, runSave]
    for (const step of pair) await step(i)
  }
  for (let i = 0; i < runs; i++) {
    const pair = i % 2 === 0 ? [runLoad, runCtr] : [runCtr, runLoad]
    for (const step of pair) await step(i)
  }

  const rows = [save, skopeo, load, ctrImport]
  const reference = (row: Row): Row => (row.step === 'save' ? skopeo : ctrImport)
  const spread = (row: Row): string => {
    const v = row.runs.map(mbps)
    return v.length < 2 ? '—' : `${(100 * (Math.max(...v) - Math.min(...v)) / median(v)).toFixed(0)} %`
  }
  const table = markdownTable(
    ['Step', 'Tool', `MB/s (median of ${runs})`, 'Runs, MB/s', 'Spread', 'vs reference', 'Wall s', 'Process CPU s', 'Process peak RSS, MiB', 'Server', 'Server CPU s', 'Server RSS before → peak, MiB'],
    rows.map((row) => {
      const ref = reference(row)
      const ratio = median(row.runs.map(mbps)) / median(ref.runs.map(mbps))
      const idle = row.runs.map((r) => r.serverIdleRssBytes).filter((v): v is number => v !== undefined)
      const peak = row.runs.map((r) => r.serverPeakRssBytes).filter((v): v is number => v !== undefined)
      return [
        row.step,
        row.isReference ? `${row.label} (reference)` : `**${row.label}**`,
        median(row.runs.map(mbps)).toFixed(0),
        row.runs.map((r) => mbps(r).toFixed(0)).join(', '),
        spread(row),
        row.isReference ? '1.00×' : `${ratio.toFixed(2)}×`,
        fmtRange(row.runs.map((r) => r.seconds), 2),
        fmtRange(row.runs.map((r) => r.cpuSeconds), 2),
        fmtRange(row.runs.map((r) => r.peakRssBytes / MIB), 0),
        row.server,
        fmtRange(row.runs.map((r) => r.serverCpuSeconds), 2),
        peak.length === 0 ? '— (shared, started before)' : `${formatMiB(median(idle))} → ${fmtRange(peak.map((v) => v / MIB), 0)}`,
      ]
    }),
  )
  const [ctrVersion, skopeoVersion, registryVersion] = await Promise.all([
    toolVersion('ctr', ['--version']), toolVersion('skopeo', ['--version']), toolVersion('docker-registry', ['--version']),
  ])
  const bundleBytes = save.runs[0]?.bytes ?? NaN
  const archiveBytes = skopeo.runs[0]?.bytes ?? NaN
  const report = renderReport({
    title: `Air-gap bundles: save and load throughput and peak RSS${isQuick ? ' (quick run)' : ''}`,
    machine,
    command: invocation(fileURLToPath(import.meta.url)),
    startedAt,
    facts: [
      `Load average at the end: ${(loadavg()[0] ?? 0).toFixed(2)}`,
      `Image: \`${ref}\`, the test image (multi-arch index, linux/amd64 and linux/arm64 sharing a busybox layer and a ${largeLayerMiB} MiB layer of seeded random bytes, gzip-wrapped by umoci, so incompressible), ${content} bytes of content (${(content / 1e9).toFixed(3)} GB), pushed to ${registryVersion} on 127.0.0.1`,
      `Bundle: flotilla's is ${bundleBytes} bytes; skopeo's oci-archive ${archiveBytes} bytes (same blobs: both tools copied every platform). MB/s = bytes of the bundle file / wall time of the command (10^6 bytes); the loaders both read flotilla's first bundle, from the page cache`,
      `${runs} run(s) per tool; the two tools of a step alternate (round i starts with the other one); \`sync\` before every run, outside the timing, so no run pays for the previous one's dirty pages; nothing is dropped from the page cache (Distribution's blobs are read from memory by every run)`,
      'Process figures: GNU time around the command (`%e %U %S %M`: CPU = user + system, peak RSS = ru_maxrss, exact); wall time measured around it. Server CPU: /proc/<pid>/stat before and after; server peak RSS: its VmHWM right after the command, so it includes its start-up',
      `save: flotilla from Distribution directly (\`--registry\`), into a fresh \`--cache-dir\` each run (it stages every blob there, then writes the tar from it); skopeo (${skopeoVersion}) stages an OCI layout in TMPDIR (set to the run's work dir, same disk) and then writes the tar`,
      `load: \`flotilla load\` into a fresh agent (\`node dist/cli/main.js serve\`, fresh data dir, its push API on 127.0.0.1); checked afterwards: the agent answers the tag with the index digest. \`ctr images import --all-platforms --no-unpack\` (${ctrVersion}) into a fresh containerd (namespace k8s.io, fresh root); **content only, no unpacking into a snapshotter**, like flotilla's load; checked afterwards: \`ctr images ls\` lists the ref and containerd holds the whole layer`,
      `Commands: ${rows.map((r) => `\`${r.command}\``).join('; ')}`,
    ],
    table,
    notes: [
      `save: flotilla ${(median(save.runs.map(mbps)) / median(skopeo.runs.map(mbps))).toFixed(2)}× skopeo's throughput, peak RSS ${formatMiB(median(save.runs.map((r) => r.peakRssBytes)))} vs ${formatMiB(median(skopeo.runs.map((r) => r.peakRssBytes)))} MiB. ` +
      `load: flotilla ${(median(load.runs.map(mbps)) / median(ctrImport.runs.map(mbps))).toFixed(2)}× ctr import's throughput; CLI peak RSS ${formatMiB(median(load.runs.map((r) => r.peakRssBytes)))} MiB and agent peak ${formatMiB(median(load.runs.map((r) => r.serverPeakRssBytes ?? NaN)))} MiB, ` +
      `against ctr ${formatMiB(median(ctrImport.runs.map((r) => r.peakRssBytes)))} MiB and containerd ${formatMiB(median(ctrImport.runs.map((r) => r.serverPeakRssBytes ?? NaN)))} MiB.`,
    ],
  })
  const path = await writeResult('bundle.md', report)
  console.log(report)
  log(`written to ${path}`)
}

await runBounded(log, parseArgs({ options: { quick: { type: 'boolean', default: false } }, strict: false }).values.quick === true ? 6 * 60_000 : 14 * 60_000, main)
