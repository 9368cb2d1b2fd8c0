// flotilla's benchmark suite: `npm run bench` (full, < 5 min on 2 cores), `npm run bench -- --quick`,
// `npm run bench -- --only head`. See BENCHMARKS.md for what each figure means.
import { mkdir, writeFile } from 'node:fs/promises'
import { availableParallelism, cpus, loadavg, release, totalmem } from 'node:os'
import { dirname, join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { Agent } from 'undici'
import { startDistribution, startDistributionProxy, type Distribution } from '../test/helpers/distribution.js'
import type { FlotillaAgent } from '../test/helpers/flotilla-agent.js'
import { runCommand } from '../test/helpers/run-command.js'
import { makeTempDir } from '../test/helpers/temp-dir.js'
import { curlDownloader, hasCurl, undiciDownloader } from './blob-download.js'
import { buildBenchImage, writeSeededBlob } from './blob-fixture.js'
import { Cleanups, FULL_SETTINGS, QUICK_SETTINGS, startBenchFlotilla, type BenchContext, type Log } from './bench-context.js'
import { measureCold } from './measure-cold.js'
import { measureConcurrent } from './measure-concurrent.js'
import { measureHead } from './measure-head.js'
import { measureDistinct } from './measure-distinct.js'
import { measureWarm } from './measure-warm.js'
import { renderDetails, renderReport, renderTable, type BenchResults, type Outcome } from './report.js'
import { pushBenchImage } from './registry-push.js'
import { readRss, RssSampler } from './rss-sampler.js'
import { withTimeout } from './with-timeout.js'

const PHASES = ['warm', 'head', 'cold', 'concurrent', 'distinct', 'rss'] as const
type Phase = typeof PHASES[number]
const LOAD_PHASES = ['warm', 'head', 'cold', 'concurrent', 'distinct'] as const

const SETUP_TIMEOUT_MS = 120_000
const PHASE_TIMEOUT_MS: Record<typeof LOAD_PHASES[number], number> = { warm: 120_000, head: 150_000, cold: 240_000, concurrent: 240_000, distinct: 240_000 }
/** Whatever happens, the process is gone by then (children, temp dirs and the namespace are removed at exit). */
const RUN_DEADLINE_MS = 12 * 60_000
const REPO = 'bench/blob'
const TAG = 'v1'
const RESULTS_DIR = join(dirname(fileURLToPath(import.meta.url)), 'results')

const USAGE = `usage: npm run bench [-- [--quick] [--only NAME]...]
  --quick      ${QUICK_SETTINGS.blobBytes / 1e6} MB blob instead of ${FULL_SETTINGS.blobBytes / 1e6} MB, fewer runs, ${QUICK_SETTINGS.headDurationS} s load runs, ${QUICK_SETTINGS.concurrentClients} concurrent clients
  --only NAME  run only these measurements (repeatable or comma-separated): ${PHASES.join(', ')}
               (flotilla's idle RSS is measured in every run)`

class UsageError extends Error {
  readonly code = 'ERR_USAGE'
  override readonly name = 'UsageError'
}

interface Cli {
  readonly isQuick: boolean
  readonly only: ReadonlySet<Phase>
}

function parseCli (argv: string[]): Cli {
  let values: { quick: boolean, only?: string[], help: boolean }
  try {
    values = parseArgs({
      args: argv,
      options: { quick: { type: 'boolean', default: false }, only: { type: 'string', multiple: true }, help: { type: 'boolean', default: false } },
      strict: true,
    }).values
  } catch (err) {
    throw new UsageError(`${(err as Error).message}\n${USAGE}`)
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`)
    process.exit(0)
  }
  const names = (values.only ?? []).flatMap((v) => v.split(',')).map((v) => v.trim()).filter((v) => v !== '')
  for (const n of names) if (!(PHASES as readonly string[]).includes(n)) throw new UsageError(`unknown --only ${JSON.stringify(n)}\n${USAGE}`)
  return { isQuick: values.quick, only: new Set(names.length === 0 ? PHASES : names as Phase[]) }
}

/** The command as the user typed it, for the results file. */
function commandLine (argv: readonly string[]): string {
  if (process.env.npm_lifecycle_event === 'bench') return `npm run bench${argv.length > 0 ? ` -- ${argv.join(' ')}` : ''}`
  return ['npx tsx bench/run.ts', ...argv].join(' ')
}

async function distributionVersion (): Promise<string> {
  const r = await runCommand('docker-registry', ['--version'], { timeoutMs: 5000 }).catch(() => undefined)
  const version = r?.stdout.trim().split(/\s+/).at(-1)
  return version === undefined || version === '' ? 'Distribution (version unknown)' : `Distribution ${version} (Debian docker-registry)`
}

/** Runs one phase under its deadline; a failure is kept as the phase's outcome, not thrown. */
async function runPhase<T> (log: Log, name: string, timeoutMs: number, fn: (signal: AbortSignal) => Promise<T>): Promise<Outcome<T>> {
  log(`${name}: start`)
  try {
    const result = await withTimeout(name, timeoutMs, fn)
    log(`${name}: done`)
    return result
  } catch (err) {
    log(`${name}: FAILED: ${(err as Error).stack ?? String(err)}`)
    return err instanceof Error ? err : new Error(String(err))
  }
}

async function main (): Promise<number> {
  const argv = process.argv.slice(2)
  const cli = parseCli(argv)
  const settings = cli.isQuick ? QUICK_SETTINGS : FULL_SETTINGS
  const started = performance.now()
  const loadStart = loadavg()[0] ?? 0
  const log: Log = (m) => { process.stderr.write(`[bench ${((performance.now() - started) / 1000).toFixed(1).padStart(5)} s] ${m}\n`) }
  const deadline = setTimeout(() => {
    log(`run deadline of ${RUN_DEADLINE_MS / 60_000} min reached: exiting`)
    process.exit(2)
  }, RUN_DEADLINE_MS)
  deadline.unref()
  if (loadStart > 0.5) log(`warning: load average is ${loadStart.toFixed(2)} before starting: something else is using the CPUs`)

  const cleanups = new Cleanups(log)
  const sampler = new RssSampler(100)
  const dispatcher = new Agent({ headersTimeout: 60_000, bodyTimeout: 60_000 })
  cleanups.add('HTTP client', async () => { await dispatcher.close() })
  const outcomes: { -readonly [K in keyof BenchResults]: BenchResults[K] } = {
    warm: undefined, head: undefined, cold: undefined, concurrent: undefined, distinct: undefined, rssIdle: undefined, rssPeak: undefined, rssPeakByPhase: sampler.peakByPhase,
  }

  let client = 'none'
  try {
    let ctx: BenchContext | undefined
    let flotilla: FlotillaAgent | undefined
    let proxy: Distribution | undefined
    const setup = await runPhase(log, 'setup', SETUP_TIMEOUT_MS, async (signal) => {
      const tmp = await makeTempDir('bench')
      cleanups.add('temp dir', tmp.cleanup)
      const blob = await writeSeededBlob(join(tmp.path, 'blob.bin'), settings.blobBytes, 'flotilla-bench')
      const image = buildBenchImage(blob, REPO, TAG)
      log(`setup: blob ${blob.digest} (${blob.size} bytes) written`)
      const registry = await startDistribution()
      cleanups.add('Distribution (registry)', registry.stop)
      await pushBenchImage(registry.url, image, { dispatcher, signal })
      log(`setup: pushed ${REPO}:${TAG} (manifest ${image.manifest.digest}) to Distribution at ${registry.url}`)
      const isCurl = await hasCurl()
      if (!isCurl) log('setup: curl not found; sequential GETs use the in-process client (expect lower MB/s)')
      ctx = { settings, image, registry, dispatcher, sampler, log, download: isCurl ? curlDownloader() : undiciDownloader(dispatcher) }
      client = isCurl ? 'curl (to /dev/null)' : 'undici (in process)'
      flotilla = await startBenchFlotilla(ctx, registry.url)
      cleanups.add('flotilla', flotilla.stop)
      if (cli.only.has('warm') || cli.only.has('head')) {
        proxy = await startDistributionProxy({ remoteUrl: registry.url })
        cleanups.add('Distribution (proxy)', proxy.stop)
      }
      // Idle: started, nothing asked of it yet, a moment to settle.
      await sleep(1000, undefined, { signal })
      const rss = await readRss(flotilla.process.pid)
      if (rss === undefined) throw new Error(`cannot read /proc/${flotilla.process.pid}/status`)
      return rss
    })
    outcomes.rssIdle = setup

    if (setup instanceof Error || ctx === undefined || flotilla === undefined) {
      for (const p of LOAD_PHASES) if (cli.only.has(p)) outcomes[p] = new Error('setup failed')
    } else {
      const c: BenchContext = ctx
      const urls = { registry: c.registry.url, proxy: proxy?.url ?? '', flotilla: flotilla.url }
      const proxyDataDir = proxy?.dataDir ?? ''
      sampler.start()
      for (const phase of LOAD_PHASES) {
        if (!cli.only.has(phase)) continue
        // The cold and concurrent tests start flotillas of their own: the shared one, idle by then, is not sampled.
        if (phase === 'cold' || phase === 'concurrent' || phase === 'distinct') sampler.unwatch(flotilla.process.pid)
        sampler.phase = phase
        switch (phase) {
          case 'warm': outcomes.warm = await runPhase(log, phase, PHASE_TIMEOUT_MS[phase], async (s) => await measureWarm(c, urls, proxyDataDir, s)); break
          case 'head': outcomes.head = await runPhase(log, phase, PHASE_TIMEOUT_MS[phase], async (s) => await measureHead(c, urls, s)); break
          case 'cold': outcomes.cold = await runPhase(log, phase, PHASE_TIMEOUT_MS[phase], async (s) => await measureCold(c, s)); break
          case 'concurrent': outcomes.concurrent = await runPhase(log, phase, PHASE_TIMEOUT_MS[phase], async (s) => await measureConcurrent(c, s)); break
          case 'distinct': outcomes.distinct = await runPhase(log, phase, PHASE_TIMEOUT_MS[phase], async (s) => await measureDistinct(c, s)); break
        }
        await sampler.sample()
      }
      sampler.stop()
      if (sampler.peakByPhase.size > 0) outcomes.rssPeak = sampler.peak
    }
  } finally {
    sampler.stop()
    log('cleanup: stopping servers, removing temp dirs')
    await cleanups.run()
  }

  const results: BenchResults = outcomes
  const durationS = (performance.now() - started) / 1000
  const report = renderReport(results, {
    date: new Date(),
    command: commandLine(argv),
    mode: cli.isQuick ? 'quick' : 'full',
    settings,
    nproc: availableParallelism(),
    cpuModel: cpus()[0]?.model.trim() ?? 'unknown CPU',
    memoryGiB: totalmem() / 2 ** 30,
    kernel: release(),
    node: process.version,
    distribution: await distributionVersion(),
    durationS,
    client,
    loadStart,
    loadEnd: loadavg()[0] ?? 0,
  })
  process.stdout.write(`\n${renderTable(results, settings)}\n\n${renderDetails(results, settings)}\n`)
  await mkdir(RESULTS_DIR, { recursive: true })
  const file = join(RESULTS_DIR, 'latest.md')
  await writeFile(file, report)
  log(`wrote ${file} (${durationS.toFixed(0)} s in all)`)
  const failed = [outcomes.warm, outcomes.head, outcomes.cold, outcomes.concurrent, outcomes.distinct, outcomes.rssIdle].some((o) => o instanceof Error)
  return failed ? 1 : 0
}

main().then((code) => { process.exitCode = code }, (err: unknown) => {
  const isUsage = err instanceof UsageError
  process.stderr.write(`bench: ${isUsage ? err.message : (err as Error).stack ?? String(err)}\n`)
  process.exitCode = isUsage ? 2 : 1
})
