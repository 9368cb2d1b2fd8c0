import { age, alignColumns, humanBytes, printable, shortDigest, truncate } from '../status/format.js'
import { PRECACHE_PHASES, type PrecacheImageStatus, type PrecacheStatus } from '../precache/precache-status.js'

/**
 * What `flotilla precache status` prints: a header (file, mode, node labels, whether the pin holds), then one
 * row per image of each set. Pure: the clock comes in as `now`, so ages are testable.
 */

const COLUMNS = ['SET', 'IMAGE', 'PHASE', 'PINNED', 'DIGEST', 'CONFIRMED', 'SIZE', 'ERROR'] as const
const ERROR_CHARS = 60

export function formatPrecacheStatus (status: PrecacheStatus, now: Date): string {
  const lines = [...header(status, now), '']
  if (status.sets.length === 0) {
    lines.push('no sets declared')
    return `${lines.join('\n')}\n`
  }
  const rows: string[][] = [[...COLUMNS]]
  for (const set of status.sets) {
    const name = printable(set.name)
    if (!set.matches) {
      rows.push([name, '(not on this node)'])
      continue
    }
    if (set.images.length === 0) rows.push([name, '(no images)'])
    for (const image of set.images) rows.push([name, ...imageCells(image, now)])
  }
  lines.push(...alignColumns(rows), '', summary(status))
  return `${lines.join('\n')}\n`
}

function header (status: PrecacheStatus, now: Date): string[] {
  const file = status.file === null
    ? '(none)'
    : `${printable(status.file)}${status.loadedAt === null ? '' : ` (loaded ${age(status.loadedAt, now)})`}`
  const fields: Array<[string, string]> = [['file', file]]
  // The sets in force are the last good ones: say so, or the table reads as the broken file's content.
  if (status.fileError !== null) fields.push(['file error', `${printable(status.fileError)} (the last good sets stay in force)`])
  fields.push(['mode', status.mode === 'containerd' ? "containerd (pulled through the node's CRI, pinned there)" : "store (warmed into the agent's own store)"])
  fields.push(['node labels', nodeLabels(status)])
  fields.push(['pin', pin(status.pin)])
  const width = Math.max(...fields.map(([label]) => label.length)) + 1
  return fields.map(([label, value]) => `${`${label}:`.padEnd(width)} ${value}`)
}

function nodeLabels (status: PrecacheStatus): string {
  if (status.nodeLabels === null) {
    return status.nodeLabelsError === null ? 'unknown (not read yet)' : `unknown: ${printable(status.nodeLabelsError)}`
  }
  const pairs = Object.entries(status.nodeLabels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
  const text = pairs.length === 0 ? '(none)' : pairs.map(([k, v]) => printable(`${k}=${v}`)).join(', ')
  // Labels read earlier stay in use when a later read fails.
  return status.nodeLabelsError === null ? text : `${text} (last read failed: ${printable(status.nodeLabelsError)})`
}

function pin (p: PrecacheStatus['pin']): string {
  const version = p.containerdVersion === null ? '' : `containerd ${printable(p.containerdVersion)}`
  const note = p.note === null ? '' : printable(p.note)
  if (p.honoured === null) {
    const why = [version, note].filter((t) => t !== '').join('; ')
    return `unknown${why === '' ? '' : ` (${why})`}`
  }
  return `${p.honoured ? 'honoured' : 'not honoured'}${version === '' ? '' : ` by ${version}`}${note === '' ? '' : ` (${note})`}`
}

function imageCells (image: PrecacheImageStatus, now: Date): string[] {
  return [
    shortRef(printable(image.ref)),
    image.phase,
    image.pinned ? 'yes' : 'no',
    image.digest === null ? '-' : shortDigest(printable(image.digest), 12),
    image.lastConfirmed === null ? '-' : age(image.lastConfirmed, now),
    image.bytes === null ? '-' : humanBytes(image.bytes),
    image.error === null ? '-' : truncate(printable(image.error), ERROR_CHARS),
  ]
}

function summary (status: PrecacheStatus): string {
  const images = status.sets.filter((s) => s.matches).flatMap((s) => s.images)
  const counts = PRECACHE_PHASES.map((phase) => [phase, images.filter((i) => i.phase === phase).length] as const).filter(([, n]) => n > 0)
  const elsewhere = status.sets.filter((s) => !s.matches).length
  const phases = counts.length === 0 ? '' : `: ${counts.map(([phase, n]) => `${n} ${phase}`).join(', ')}`
  return `${images.length} image${images.length === 1 ? '' : 's'} on this node${phases}` +
    (elsewhere === 0 ? '' : `; ${elsewhere} set${elsewhere === 1 ? '' : 's'} not on this node`)
}

/** A digest reference keeps 12 hex chars of its digest: the DIGEST column has the rest of the story. */
function shortRef (ref: string): string {
  return ref.replace(/@(sha256|sha512):([0-9a-f]{12})[0-9a-f]+$/, '@$1:$2…')
}
