/**
 * Text formatting shared by the CLI's tables and the status page: ages, sizes, rates, one-line text. Pure:
 * the clock comes in as `now`.
 */

/** `12s ago`, `3m ago`, `5h ago`, `2d ago`; a time ahead of this machine's clock is `just now`. */
export function age (iso: string, now: Date): string {
  const ms = now.getTime() - Date.parse(iso)
  if (Number.isNaN(ms)) return printable(iso)
  const s = Math.floor(ms / 1000)
  if (s <= 0) return 'just now'
  return `${duration(s)} ago`
}

/** `12s`, `3m`, `5h`, `2d`: a duration in seconds, to the largest whole unit (hours up to two days). */
export function duration (seconds: number): string {
  const s = Math.max(0, Math.floor(seconds))
  if (s < 60) return `${s}s`
  if (s < 3600) return `${Math.floor(s / 60)}m`
  if (s < 48 * 3600) return `${Math.floor(s / 3600)}h`
  return `${Math.floor(s / 86_400)}d`
}

/** Decimal units, as registries and `crictl images` report sizes: `999 B`, `1.0 kB`, `12.3 MB`. */
export function humanBytes (bytes: number): string {
  const units = ['kB', 'MB', 'GB', 'TB', 'PB']
  if (bytes < 1000) return `${Math.round(bytes)} B`
  let value = bytes
  let unit = 'B'
  for (const next of units) {
    if (value < 1000) break
    value /= 1000
    unit = next
  }
  // 999.96 kB rounds to "1000.0 kB": say 1.0 MB instead.
  if (Number(value.toFixed(1)) >= 1000 && unit !== 'PB') return `1.0 ${units[units.indexOf(unit) + 1] ?? unit}`
  return `${value.toFixed(1)} ${unit}`
}

/** `1.2 MB/s`. */
export function humanRate (bytesPerSecond: number): string {
  return `${humanBytes(bytesPerSecond)}/s`
}

/** `sha256:0123456789abcdef…` → `0123456789ab`; any other text is shown as it is, cut to the same width. */
export function shortDigest (digest: string, chars = 12): string {
  const colon = digest.indexOf(':')
  return digest.slice(colon + 1, colon + 1 + chars)
}

/** Cut in the middle: an error's start says what failed, its end usually why (`… 503 Service Unavailable`). */
export function truncate (text: string, max: number): string {
  if (text.length <= max) return text
  const head = Math.floor((max - 1) * 0.4)
  return `${text.slice(0, head).trimEnd()}…${text.slice(text.length - (max - 1 - head)).trimStart()}`
}

/** An agent's text on one line, without control characters (an error may quote a registry's answer). */
export function printable (text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f-\u009f]+/g, ' ').replace(/ {2,}/g, ' ').trim()
}

/** Pads every column but the last to its widest cell; a row may stop early. */
export function alignColumns (rows: readonly string[][], gap = '  '): string[] {
  const widths: number[] = []
  for (const row of rows) {
    row.forEach((cell, i) => {
      if (i < row.length - 1) widths[i] = Math.max(widths[i] ?? 0, cell.length)
    })
  }
  return rows.map((row) => row.map((cell, i) => (i < row.length - 1 ? cell.padEnd(widths[i] ?? 0) : cell)).join(gap).trimEnd())
}
