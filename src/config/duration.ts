const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }

/** Parses `200ms`, `30s`, `5m`, `1h30m`, `7d` (or a bare number of seconds) into milliseconds. */
export function parseDuration (input: string | number): number {
  if (typeof input === 'number') {
    if (!Number.isFinite(input) || input < 0) throw new TypeError(`invalid duration ${input}`)
    return input * 1000
  }
  const text = input.trim()
  if (/^\d+(\.\d+)?$/.test(text)) return Number(text) * 1000
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/gy
  let total = 0
  let matched = 0
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    total += Number(m[1]) * (UNITS[m[2] as string] as number)
    matched = re.lastIndex
  }
  if (text === '' || matched !== text.length) throw new TypeError(`invalid duration ${JSON.stringify(input)} (use e.g. 200ms, 30s, 5m, 1h)`)
  return total
}
