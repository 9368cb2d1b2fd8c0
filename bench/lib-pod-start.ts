// Pieces of bench/pod-start-bench.ts: ctr run inside a network namespace and timed, what its output says
// about unpacking, the single-platform image, and the report's rows.
import { readFile } from 'node:fs/promises'
import { performance } from 'node:perf_hooks'
import type { Containerd } from '../test/helpers/containerd.js'
import { CommandError, formatCommand, runCommand } from '../test/helpers/run-command.js'
import { skopeoCopy } from '../test/helpers/skopeo.js'
import { hostManifest, type TestImage } from '../test/helpers/test-image.js'
import { markdownTable, median } from './lib-report.js'

export type Way = 'flotilla' | 'import' | 'loopback'
export const WAYS: readonly Way[] = ['flotilla', 'import', 'loopback']

export const WAY_LABELS: Readonly<Record<Way, string>> = {
  flotilla: 'flotilla: `ctr images pull` through the node\'s agent, served by a peer (upstream stopped)',
  import: '`ctr images import` of an OCI archive on local disk',
  loopback: '`ctr images pull --plain-http` from Distribution on the node\'s 127.0.0.1',
}

/** What the flotilla runs add: the agents' side of the pull. */
export interface FlotillaFacts {
  /** CPU seconds (user + system) of n1's agent (the one containerd pulls through) during the pull. */
  readonly n1CpuSeconds: number
  /** CPU seconds of n0's agent (the peer holding the image) during the pull. */
  readonly n0CpuSeconds: number
  /** From n1's agent being ready to both agents counting a peer. */
  readonly meshMs: number
  /** n1's flotilla_requests_total by kind and result, e.g. `manifest hit 1, blob peer 3`. */
  readonly requests: string
  readonly blobsFromPeer: number
  readonly blobsFromUpstream: number
  /** Blob GETs n1's agent answered with a 307 to the peer holding them (p2p.sendToHolders). */
  readonly blobsSentToHolder: number
  /** Calls n1's agent made to the (stopped) upstream that failed, each after its retries. */
  readonly upstreamCallsFailed: number
  /** n1's flotilla_request_duration_seconds (request to the end of the response), summed per kind, and the count. */
  readonly manifestHeaders: { readonly seconds: number, readonly count: number }
  readonly blobHeaders: { readonly seconds: number, readonly count: number }
}

export interface Run {
  readonly way: Way
  /** Round (0-based) and place in that round's order (0-based). */
  readonly round: number
  readonly position: number
  /** Wall time of the ctr command: everything until the image is unpacked into the snapshotter. */
  readonly seconds: number
  /** The unpack step as ctr reports it (`done: …` of `ctr images pull`); undefined when ctr does not say. */
  readonly unpackSeconds?: number
  /** Pulls: what ctr's progress frames show. */
  readonly progress?: PullProgress
  /** CPU seconds of the ctr client process (in containerd 1.6 it fetches the content itself). */
  readonly ctrCpuSeconds: number
  /** CPU seconds of containerd during the command (content writes, unpacking). */
  readonly containerdCpuSeconds: number
  /** CPU seconds of what served the content: both agents (flotilla), Distribution (loopback). */
  readonly serverCpuSeconds?: number
  readonly flotilla?: FlotillaFacts
}

export interface TimedCtr {
  readonly seconds: number
  readonly cpuSeconds: number
  readonly stdout: string
}

/** CPU seconds (user + system) of this process's children that have exited and been waited for. */
async function childrenCpuSeconds (): Promise<number> {
  const stat = await readFile('/proc/self/stat', 'utf8')
  // "pid (comm) state ppid …": fields after the last ')'; cutime and cstime are the 16th and 17th of the whole line.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[13]) + Number(fields[14])) / 100
}

/**
 * `ctr --address <socket> -n <namespace> <args…>` inside `netns` (ctr 1.6 fetches in the client, so it must dial
 * from the node's namespace), timed by wall clock; its CPU is what our reaped children gained meanwhile (nothing
 * else of ours runs during it). Throws a CommandError unless it exits 0.
 */
export async function ctrTimed (netns: string, ctrd: Containerd, args: readonly string[], timeoutMs: number): Promise<TimedCtr> {
  const argv = ['netns', 'exec', netns, 'ctr', '--address', ctrd.socket, '-n', ctrd.namespace, ...args]
  const cpu0 = await childrenCpuSeconds()
  const started = performance.now()
  const r = await runCommand('ip', argv, { timeoutMs })
  const seconds = (performance.now() - started) / 1000
  const cpuSeconds = await childrenCpuSeconds() - cpu0
  if (r.code !== 0 || r.isTimedOut) throw new CommandError(formatCommand('ip', argv), r)
  return { seconds, cpuSeconds, stdout: r.stdout }
}

/** Seconds of a Go duration such as `1.5s`, `850.2ms`, `1m2.5s`; undefined for anything else. */
export function parseGoDuration (text: string): number | undefined {
  const units: Record<string, number> = { h: 3600, m: 60, s: 1, ms: 1e-3, 'µs': 1e-6, us: 1e-6, ns: 1e-9 }
  let total = 0
  let rest = text
  while (rest !== '') {
    const m = /^(\d+(?:\.\d+)?)(h|ms|m|s|µs|us|ns)/.exec(rest)
    if (m?.[1] === undefined || m[2] === undefined) return undefined
    total += Number(m[1]) * (units[m[2]] ?? NaN)
    rest = rest.slice(m[0].length)
  }
  return text === '' ? undefined : total
}

/** `ctr images pull` (1.6) prints `done: <duration>` for its unpack step, which it times itself. */
export function unpackSecondsOf (stdout: string): number | undefined {
  const m = /done: (\S+)/.exec(stdout)
  return m?.[1] === undefined ? undefined : parseGoDuration(m[1])
}

/** When ctr pull's progress first showed something, in seconds since it started. */
export interface PullProgress {
  /** The tag resolved (containerd has the manifest's digest: time to the first manifest). */
  readonly resolvedBy?: number
  /** Every manifest, config and layer done: the fetch is over, the unpack comes next. */
  readonly contentBy?: number
}

/**
 * Reads ctr pull's progress frames (it prints one every 100 ms: a status line per ref and blob, then
 * `elapsed: X s`): the first frame showing the tag resolved, and the first showing every blob done. Each figure
 * is thus at most 0.1 s after the event.
 */
export function pullProgressOf (stdout: string): PullProgress {
  let resolvedBy: number | undefined
  let contentBy: number | undefined
  let frame: Array<{ name: string, status: string }> = []
  for (const line of stdout.split('\n')) {
    const elapsed = /elapsed: ([\d.]+) s/.exec(line)
    if (elapsed?.[1] === undefined) {
      const m = /(\S+):\s+(resolving|resolved|waiting|downloading|done|exists|committing|unknown)\s+\|/.exec(line)
      if (m?.[1] !== undefined && m[2] !== undefined) frame.push({ name: m[1], status: m[2] })
      continue
    }
    const at = Number(elapsed[1])
    if (resolvedBy === undefined && frame.some((f) => f.status === 'resolved')) resolvedBy = at
    const blobs = frame.filter((f) => /(^|\W)(manifest|index|config|layer)-sha256:/.test(f.name))
    if (contentBy === undefined && blobs.some((f) => f.name.includes('layer-')) && blobs.every((f) => f.status === 'done' || f.status === 'exists')) contentBy = at
    frame = []
  }
  return { ...(resolvedBy === undefined ? {} : { resolvedBy }), ...(contentBy === undefined ? {} : { contentBy }) }
}

/** Checks containerd is ready to start a container from `ref`: the image is listed and its layers are committed snapshots. */
export async function assertReady (ctrd: Containerd, ref: string, layers: number): Promise<void> {
  const ls = await ctrd.ctr(['images', 'ls', '-q'], { timeoutMs: 10_000 })
  const names = ls.stdout.split('\n')
  if (ls.code !== 0 || !names.includes(ref)) throw new Error(`ctr images ls: ${ref} missing (listed: ${names.filter(Boolean).join(' ') || 'nothing'}) ${ls.stderr}`)
  const snaps = await ctrd.ctr(['snapshots', '--snapshotter', ctrd.snapshotter, 'ls'], { timeoutMs: 10_000 })
  const committed = snaps.stdout.split('\n').filter((line) => /\sCommitted\s*$/.test(line)).length
  if (committed < layers) throw new Error(`${ctrd.snapshotter} holds ${committed} committed snapshot(s) after ${ref}, expected ${layers}: not unpacked\n${snaps.stdout}`)
}

/** This platform's manifest of the test image as an OCI layout of its own (digests kept), tagged `tag`. */
export async function singlePlatformLayout (image: TestImage, dir: string, tag: string): Promise<{ dir: string, bytes: number, layers: number }> {
  // Without --all, skopeo picks this machine's platform out of the index and copies only that image.
  await skopeoCopy(`oci:${image.layoutDir}:${image.tag}`, `oci:${dir}:${tag}`, { preserveDigests: true, timeoutMs: 180_000 })
  const m = hostManifest(image)
  return { dir, bytes: m.size + m.configSize + m.layers.reduce((t, l) => t + l.size, 0), layers: m.layers.length }
}

/** One figure per run, in round order: `3.21, 3.40, 3.05`. */
export function runsOf (runs: readonly Run[], value: (r: Run) => number | undefined, digits = 2): string {
  return runs.map((r) => value(r)?.toFixed(digits) ?? '—').join(', ')
}

/** The median of what is known, or '—'. */
export function medianOf (runs: readonly Run[], value: (r: Run) => number | undefined, digits = 2): string {
  const known = runs.map(value).filter((v): v is number => v !== undefined && !Number.isNaN(v))
  return known.length === 0 ? '—' : median(known).toFixed(digits)
}

/** The report's table: one row per way, flotilla against its target (≤ `target` × ctr import). */
export function resultTable (byWay: Readonly<Record<Way, readonly Run[]>>, target: number): { table: string, ratio: number, loopbackRatio: number, isMet: boolean } {
  const med = (way: Way): number => median(byWay[way].map((r) => r.seconds))
  const ratio = med('flotilla') / med('import')
  const loopbackRatio = med('flotilla') / med('loopback')
  const isMet = ratio <= target
  const n = Math.max(...WAYS.map((w) => byWay[w].length))
  const table = markdownTable(
    ['Way', `Seconds (median of ${n})`, 'Runs, s', 'vs ctr import', 'vs loopback Distribution', 'Target', 'Met', 'Tag resolved by, s', 'Content fetched by, s', 'Unpack s (ctr)', 'ctr CPU s', 'containerd CPU s', 'Server CPU s'],
    WAYS.map((way) => {
      const runs = byWay[way]
      const isFlotilla = way === 'flotilla'
      return [
        isFlotilla ? `**${WAY_LABELS[way]}**` : WAY_LABELS[way],
        med(way).toFixed(2),
        runsOf(runs, (r) => r.seconds),
        `${(med(way) / med('import')).toFixed(2)}×`,
        `${(med(way) / med('loopback')).toFixed(2)}×`,
        isFlotilla ? `≤ ${target.toFixed(2)}× ctr import` : '—',
        isFlotilla ? (isMet ? 'yes' : '**no**') : '—',
        medianOf(runs, (r) => r.progress?.resolvedBy, 1),
        medianOf(runs, (r) => r.progress?.contentBy, 1),
        medianOf(runs, (r) => r.unpackSeconds),
        medianOf(runs, (r) => r.ctrCpuSeconds),
        medianOf(runs, (r) => r.containerdCpuSeconds),
        medianOf(runs, (r) => r.serverCpuSeconds),
      ]
    }),
  )
  return { table, ratio, loopbackRatio, isMet }
}

/**
 * flotilla's extra time over the loopback Distribution, split by what ctr's progress shows (medians, so the parts
 * need not add up exactly): resolving the tag, fetching the content after that, unpacking.
 */
export function breakdownNote (byWay: Readonly<Record<Way, readonly Run[]>>): string {
  const med = (way: Way, value: (r: Run) => number | undefined): number =>
    median(byWay[way].map(value).filter((v): v is number => v !== undefined && !Number.isNaN(v)))
  const diff = (value: (r: Run) => number | undefined): string => {
    const d = med('flotilla', value) - med('loopback', value)
    return `${d >= 0 ? '+' : ''}${d.toFixed(2)} s`
  }
  const fetch = (r: Run): number | undefined => (r.progress?.contentBy === undefined || r.progress.resolvedBy === undefined ? undefined : r.progress.contentBy - r.progress.resolvedBy)
  return `Where flotilla's extra time goes, against the loopback Distribution (medians): total ${diff((r) => r.seconds)}; ` +
    `tag resolved ${diff((r) => r.progress?.resolvedBy)}; content fetched after that ${diff(fetch)} ` +
    `(${med('flotilla', fetch).toFixed(1)} vs ${med('loopback', fetch).toFixed(1)} s); unpack ${diff((r) => r.unpackSeconds)}. ` +
    `Serving CPU: both agents ${med('flotilla', (r) => r.serverCpuSeconds).toFixed(2)} s (n1 ${med('flotilla', (r) => r.flotilla?.n1CpuSeconds).toFixed(2)}, n0 ${med('flotilla', (r) => r.flotilla?.n0CpuSeconds).toFixed(2)}), ` +
    `Distribution ${med('loopback', (r) => r.serverCpuSeconds).toFixed(2)} s.`
}

/** One Details line per flotilla run: the agents' CPU, the mesh wait, what n1 counted. */
export function flotillaDetail (r: Run): string {
  const f = r.flotilla
  if (f === undefined) return `round ${r.round + 1}: no agent figures`
  const perRequest = (h: { seconds: number, count: number }): string => (h.count === 0 ? '—' : `${h.seconds.toFixed(3)} s over ${h.count} (${(1000 * h.seconds / h.count).toFixed(0)} ms each)`)
  return `round ${r.round + 1} (${ordinal(r.position)} of the round): ${r.seconds.toFixed(2)} s; tag resolved by ${r.progress?.resolvedBy?.toFixed(1) ?? '—'} s, ` +
    `content by ${r.progress?.contentBy?.toFixed(1) ?? '—'} s, unpack ${r.unpackSeconds?.toFixed(2) ?? '—'} s; ` +
    `n1's agent ${f.n1CpuSeconds.toFixed(2)} CPU s, n0's agent ${f.n0CpuSeconds.toFixed(2)} CPU s, ctr ${r.ctrCpuSeconds.toFixed(2)} CPU s, containerd ${r.containerdCpuSeconds.toFixed(2)} CPU s; ` +
    `mesh after ${(f.meshMs / 1000).toFixed(1)} s; n1 request time (to the response's end): manifests ${perRequest(f.manifestHeaders)}, blobs ${perRequest(f.blobHeaders)}; ` +
    `n1 requests: ${f.requests}; n1's calls to the stopped upstream that failed (each after its retries): ${f.upstreamCallsFailed}; blobs from a peer ${f.blobsFromPeer} (${f.blobsSentToHolder} of them by a 307 to it), from upstream ${f.blobsFromUpstream} — ${f.blobsFromPeer > 0 && f.blobsFromUpstream === 0 ? 'served by the peer: yes' : '**served by the peer: no**'}`
}

export function ordinal (i: number): string {
  return ['1st', '2nd', '3rd'][i] ?? `${i + 1}th`
}
