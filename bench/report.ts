import type { BenchSettings } from './bench-context.js'
import type { ColdLinkResult, ColdResult } from './measure-cold.js'
import type { ConcurrentResult } from './measure-concurrent.js'
import type { DistinctResult } from './measure-distinct.js'
import { MANIFEST_REFS, type HeadResult } from './measure-head.js'
import type { WarmResult } from './measure-warm.js'

/** A phase's result, the error it failed with, or undefined when it was not selected. */
export type Outcome<T> = T | Error | undefined

export interface BenchResults {
  readonly warm: Outcome<WarmResult>
  readonly head: Outcome<HeadResult>
  readonly cold: Outcome<ColdResult>
  readonly concurrent: Outcome<ConcurrentResult>
  readonly distinct: Outcome<DistinctResult>
  readonly rssIdle: Outcome<number>
  /** Peak RSS over the load phases that ran; undefined when none did. */
  readonly rssPeak: number | undefined
  readonly rssPeakByPhase: ReadonlyMap<string, number>
}

export interface RunInfo {
  readonly date: Date
  readonly command: string
  readonly mode: 'full' | 'quick'
  readonly settings: BenchSettings
  readonly nproc: number
  readonly cpuModel: string
  readonly memoryGiB: number
  readonly kernel: string
  readonly node: string
  readonly distribution: string
  readonly durationS: number
  /** Client of the sequential blob GETs. */
  readonly client: string
  /** 1-minute load average when the run started and when it ended. */
  readonly loadStart: number
  readonly loadEnd: number
}

const RSS_LIMIT_MIB = 120
const COLD_LIMIT = 1.1
const HEAD_FACTOR = 2

type Row = readonly [measurement: string, registry: string, proxy: string, flotilla: string, ratio: string, target: string, met: string]

const mib = (bytes: number): string => (bytes / 2 ** 20).toFixed(0)
const x = (ratio: number): string => `${ratio.toFixed(2)}×`
const yesNo = (ok: boolean): string => (ok ? 'yes' : '**no**')
const isDone = <T>(o: Outcome<T>): o is T => o !== undefined && !(o instanceof Error)

function notDone (measurement: string, o: Outcome<unknown>, target: string): Row {
  const why = o instanceof Error ? `failed: ${o.message.split('\n')[0]?.slice(0, 120) ?? ''}` : 'not run'
  return [measurement, why, '', '', '', target, '—']
}

function blobLabel (s: BenchSettings): string {
  return `${(s.blobBytes / 1e6).toFixed(0)} MB`
}

function warmRow (r: BenchResults, s: BenchSettings): Row {
  const measurement = `Warm GET of a ${blobLabel(s)} blob, MB/s (median of ${s.warmGets})`
  const target = '≥ Distribution'
  if (!isDone(r.warm)) return notDone(measurement, r.warm, target)
  const { registry, proxy, flotilla } = r.warm
  const best = Math.max(registry.median, proxy.median)
  return [measurement, registry.median.toFixed(0), proxy.median.toFixed(0), flotilla.median.toFixed(0),
    `${x(flotilla.median / registry.median)} registry, ${x(flotilla.median / proxy.median)} proxy`, target, yesNo(flotilla.median >= best)]
}

function headRows (r: BenchResults, s: BenchSettings): Row[] {
  const target = `≥ ${HEAD_FACTOR}× Distribution`
  return MANIFEST_REFS.map((ref) => {
    const measurement = `Manifest HEAD by ${ref}, req/s (${s.headConnections} connections, ${s.headDurationS} s)`
    if (!isDone(r.head)) return notDone(measurement, r.head, target)
    const { registry, proxy, flotilla } = r.head[ref]
    const isClean = [registry, proxy, flotilla].every((h) => h.non2xx === 0 && h.errors === 0)
    const best = Math.max(registry.reqPerSec, proxy.reqPerSec)
    return [measurement, registry.reqPerSec.toFixed(0), proxy.reqPerSec.toFixed(0), flotilla.reqPerSec.toFixed(0),
      `${x(flotilla.reqPerSec / registry.reqPerSec)} registry, ${x(flotilla.reqPerSec / proxy.reqPerSec)} proxy`,
      target, isClean ? yesNo(flotilla.reqPerSec >= HEAD_FACTOR * best) : '**errors**']
  })
}

function coldRow (measurement: string, o: Outcome<ColdLinkResult>): Row {
  const target = `≤ ${COLD_LIMIT}× direct`
  if (!isDone(o)) return notDone(measurement, o, target)
  const { direct, proxy, flotilla } = o
  const ratio = flotilla.median / direct.median
  return [measurement, `${direct.median.toFixed(2)} (direct)`, proxy.median.toFixed(2), flotilla.median.toFixed(2),
    `${x(ratio)} direct (proxy ${x(proxy.median / direct.median)})`, target, yesNo(ratio <= COLD_LIMIT)]
}

function coldRows (r: BenchResults, s: BenchSettings): Row[] {
  const runs = `median of ${s.coldRuns}`
  const capped = `Cold pull-through of ${blobLabel(s)}, upstream link capped at ${s.capRate}/s, s (${runs})`
  const uncapped = `Cold pull-through of ${blobLabel(s)}, upstream link uncapped (veth), s (${runs})`
  if (!isDone(r.cold)) return [coldRow(capped, r.cold), coldRow(uncapped, r.cold)]
  return [coldRow(capped, r.cold.capped), coldRow(uncapped, r.cold.uncapped)]
}

function concurrentRow (r: BenchResults, s: BenchSettings): Row {
  const measurement = `Upstream bytes for ${s.concurrentClients} concurrent cold GETs, × blob size`
  const target = 'exactly 1×'
  if (!isDone(r.concurrent)) return notDone(measurement, r.concurrent, target)
  const { proxy, flotilla } = r.concurrent
  const cell = (c: typeof proxy): string => `${x(c.upstreamBytes / s.blobBytes)} (${c.upstreamGets} GET${c.upstreamGets === 1 ? '' : 's'}${c.clientsOk < c.clients ? `, ${c.clients - c.clientsOk} clients failed` : ''})`
  const isMet = flotilla.upstreamBytes === s.blobBytes && flotilla.clientsOk === flotilla.clients
  return [measurement, '—', cell(proxy), cell(flotilla), '—', target, yesNo(isMet)]
}

function distinctRow (r: BenchResults, s: BenchSettings): Row {
  const measurement = `Peak RSS, ${s.concurrentClients} concurrent cold GETs of ${s.concurrentClients} different ${(s.distinctBlobBytes / 1e6).toFixed(0)} MB blobs, MiB (wall s)`
  const target = `≤ ${RSS_LIMIT_MIB} MiB`
  if (!isDone(r.distinct)) return notDone(measurement, r.distinct, target)
  const { proxy, flotilla } = r.distinct
  const cell = (c: typeof proxy): string => `${mib(c.rssPeak)} (${c.wallS.toFixed(1)} s${c.clientsOk < c.clients ? `, ${c.clients - c.clientsOk} clients failed` : ''})`
  return [measurement, '—', cell(proxy), cell(flotilla), `${x(flotilla.wallS / proxy.wallS)} wall`, target, yesNo(flotilla.rssPeak <= RSS_LIMIT_MIB * 2 ** 20 && flotilla.clientsOk === flotilla.clients)]
}

function rssRows (r: BenchResults): Row[] {
  const target = `≤ ${RSS_LIMIT_MIB} MiB`
  const idle: Row = isDone(r.rssIdle)
    ? ['flotilla RSS idle after start, MiB', '—', '—', mib(r.rssIdle), '—', target, yesNo(r.rssIdle <= RSS_LIMIT_MIB * 2 ** 20)]
    : notDone('flotilla RSS idle after start, MiB', r.rssIdle, target)
  const peak: Row = r.rssPeak === undefined
    ? notDone('flotilla RSS peak under load (100 ms samples), MiB', undefined, target)
    : ['flotilla RSS peak under load (100 ms samples), MiB', '—', '—', mib(r.rssPeak), '—', target, yesNo(r.rssPeak <= RSS_LIMIT_MIB * 2 ** 20)]
  return [idle, peak]
}

export function renderTable (r: BenchResults, s: BenchSettings): string {
  const header: Row = ['Measurement', 'Distribution (registry)', 'Distribution (proxy)', 'flotilla', 'flotilla vs Distribution', 'Target', 'Met']
  const rows: Row[] = [warmRow(r, s), ...headRows(r, s), ...coldRows(r, s), concurrentRow(r, s), distinctRow(r, s), ...rssRows(r)]
  const line = (cells: readonly string[]): string => `| ${cells.map((c) => c.replaceAll('|', '\\|')).join(' | ')} |`
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n')
}

function coldDetails (label: string, c: ColdLinkResult, blobBytes: number): string {
  const fmt = (runs: readonly number[]): string => runs.map((t) => t.toFixed(2)).join(', ')
  return `- Cold, ${label}: direct ${fmt(c.direct.runs)} s (${(blobBytes / 1e6 / c.direct.median).toFixed(0)} MB/s); ` +
    `flotilla ${fmt(c.flotilla.runs)} s; Distribution proxy ${fmt(c.proxy.runs)} s`
}

/** Per-run figures and error counts behind the table. */
export function renderDetails (r: BenchResults, s: BenchSettings): string {
  const lines: string[] = []
  if (isDone(r.warm)) {
    for (const [name, t] of Object.entries(r.warm)) lines.push(`- Warm GET, ${name}: ${t.runs.map((v) => v.toFixed(0)).join(', ')} MB/s`)
  }
  if (isDone(r.head)) {
    for (const ref of MANIFEST_REFS) {
      for (const [name, h] of Object.entries(r.head[ref])) {
        lines.push(`- HEAD by ${ref}, ${name}: ${h.total} requests, p50 ${h.p50LatencyMs} ms, p99 ${h.p99LatencyMs} ms, non-2xx ${h.non2xx}, errors ${h.errors}, timeouts ${h.timeouts}`)
      }
    }
  }
  if (isDone(r.cold)) {
    lines.push(coldDetails(`link capped at ${r.cold.capRate}/s`, r.cold.capped, s.blobBytes))
    lines.push(coldDetails('link uncapped', r.cold.uncapped, s.blobBytes))
  }
  if (isDone(r.concurrent)) {
    for (const [name, c] of Object.entries(r.concurrent)) {
      lines.push(`- ${s.concurrentClients} concurrent cold GETs, ${name}: ${c.clientsOk}/${c.clients} clients got the whole blob in ${c.wallS.toFixed(1)} s; ` +
        `upstream sent ${c.upstreamBytes} bytes in ${c.upstreamGets} GETs${c.firstError === undefined ? '' : `; first failure: ${c.firstError.split('\n')[0] ?? ''}`}`)
    }
  }
  if (isDone(r.distinct)) {
    for (const name of ['proxy', 'flotilla'] as const) {
      const c = r.distinct[name]
      lines.push(`- ${c.clients} concurrent cold GETs of different blobs, ${name}: ${c.clientsOk}/${c.clients} ok in ${c.wallS.toFixed(1)} s, peak RSS ${mib(c.rssPeak)} MiB` +
        `${c.firstError === undefined ? '' : `; first failure: ${c.firstError.split('\n')[0] ?? ''}`}`)
    }
  }
  if (r.rssPeakByPhase.size > 0) {
    lines.push(`- flotilla peak RSS by phase: ${[...r.rssPeakByPhase].map(([phase, bytes]) => `${phase} ${mib(bytes)} MiB`).join(', ')}`)
  }
  return lines.join('\n')
}

export function renderReport (r: BenchResults, info: RunInfo): string {
  const s = info.settings
  return [
    `# flotilla benchmark results (${info.mode} run)`,
    '',
    `- Date: ${info.date.toISOString()}`,
    `- Machine: ${info.nproc} CPUs (${info.cpuModel}), ${info.memoryGiB.toFixed(0)} GiB RAM, Linux ${info.kernel}`,
    `- Node ${info.node}; ${info.distribution}`,
    `- Command: \`${info.command}\``,
    `- Blob: ${s.blobBytes} bytes of seeded random data; sequential GETs with ${info.client}; run took ${info.durationS.toFixed(0)} s`,
    `- Load average (1 min): ${info.loadStart.toFixed(2)} at start, ${info.loadEnd.toFixed(2)} at end` +
      (info.loadStart > 0.5 ? ' — **the machine was busy when the run started: figures are less reliable**' : ''),
    '',
    renderTable(r, s),
    '',
    '## Details',
    '',
    renderDetails(r, s),
    '',
  ].join('\n')
}
