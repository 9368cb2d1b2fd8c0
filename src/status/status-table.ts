import { age, alignColumns, duration, humanBytes, humanRate, printable, shortDigest, truncate } from './format.js'
import type { NodeStatus } from './node-status.js'

/**
 * What `flotilla status` prints: the node on one line, then a short block per section (peers, store,
 * downloads, pre-cache, upstreams, recent errors, traffic). Pure: the clock comes in as `now`.
 */

const ERROR_CHARS = 70
const RECENT_ERRORS_SHOWN = 5

export function formatNodeStatus (s: NodeStatus, now: Date): string {
  const n = s.node
  const lines: string[] = [
    `${p(n.role)} ${p(n.address)}  zone ${n.zone === null ? '-' : p(n.zone)}  version ${p(n.version)}  up ${duration(n.uptimeSeconds)}`,
    '',
    `PEERS (${s.peers.length})`,
    ...(s.peers.length === 0
      ? ['  none']
      : indent(alignColumns([['ADDRESS', 'ZONE', 'LAST SEEN', 'ID'], ...s.peers.map((x) => [
        x.address === null ? '-' : p(x.address), x.zone === null ? '-' : p(x.zone), x.lastSeen === null ? '-' : age(x.lastSeen, now), p(x.id),
      ])]))),
    '',
    `STORE  ${humanBytes(s.store.bytes)}${s.store.budgetBytes === null ? '' : ` of ${humanBytes(s.store.budgetBytes)}`}` +
      `${s.store.linkedBytes === null ? '' : `  (linked to containerd ${humanBytes(s.store.linkedBytes)})`}` +
      `  evictions ${s.store.evictions} (${humanBytes(s.store.evictedBytes)})`,
    '',
    `DOWNLOADS (${s.downloads.length})`,
    ...(s.downloads.length === 0
      ? ['  none']
      : indent(alignColumns([['BLOB', 'FROM', 'DONE', 'RATE', 'SOURCE'], ...s.downloads.map((d) => [
        shortDigest(p(d.digest)), d.registry === null ? '-' : p(d.registry),
        `${humanBytes(d.bytesDone)}${d.size === null ? '' : ` / ${humanBytes(d.size)} (${percent(d.bytesDone, d.size)})`}`,
        humanRate(d.rate), p(d.source),
      ])]))),
    '',
    ...precache(s),
    '',
    'UPSTREAMS',
    ...(s.upstreams.length === 0
      ? ['  none']
      : indent(alignColumns([['REGISTRY', 'CIRCUIT', 'ENDPOINT', 'LAST ERROR'], ...s.upstreams.map((u) => [
        p(u.registry), u.circuit, p(u.endpoint),
        u.lastError === null ? '-' : `${truncate(p(u.lastError), ERROR_CHARS)}${u.lastErrorAt === null ? '' : ` (${age(u.lastErrorAt, now)})`}`,
      ])]))),
    '',
    `RECENT ERRORS (${s.recentErrors.length})`,
    ...(s.recentErrors.length === 0
      ? ['  none']
      : s.recentErrors.slice(0, RECENT_ERRORS_SHOWN).map((e) => `  ${age(e.at, now)}  ${truncate(p(e.message), ERROR_CHARS * 2)}`)),
    ...(s.recentErrors.length > RECENT_ERRORS_SHOWN ? [`  … ${s.recentErrors.length - RECENT_ERRORS_SHOWN} more (--json)`] : []),
    '',
    `SERVED  ${served(s)}  upstream bytes saved ${humanBytes(s.upstreamBytesSaved)}`,
  ]
  return `${lines.join('\n')}\n`
}

function precache (s: NodeStatus): string[] {
  if (s.precache === null) return ['PRE-CACHE  not configured']
  const rows = s.precache.sets.flatMap((set) => {
    if (!set.matches) return [[p(set.name), '(not on this node)']]
    if (set.images.length === 0) return [[p(set.name), '(no images)']]
    return set.images.map((i) => [p(set.name), p(i.ref), i.phase, i.error === null ? '-' : truncate(p(i.error), ERROR_CHARS)])
  })
  const ready = s.precache.sets.filter((set) => set.matches).flatMap((set) => set.images)
  const head = `PRE-CACHE  ${ready.filter((i) => i.phase === 'Ready').length}/${ready.length} Ready`
  return rows.length === 0 ? [head, '  no sets declared'] : [head, ...indent(alignColumns([['SET', 'IMAGE', 'PHASE', 'ERROR'], ...rows]))]
}

function served (s: NodeStatus): string {
  const entries = Object.entries(s.servedBytes).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
  return entries.length === 0 ? 'nothing yet' : entries.map(([source, n]) => `${p(source)} ${humanBytes(n)}`).join(', ')
}

function percent (done: number, size: number): string {
  return size === 0 ? '100%' : `${Math.min(100, Math.floor((done / size) * 100))}%`
}

function indent (lines: readonly string[]): string[] {
  return lines.map((l) => `  ${l}`)
}

const p = printable
