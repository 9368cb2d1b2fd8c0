const UNITS: Record<string, number> = {
  '': 1, b: 1,
  k: 1e3, kb: 1e3, m: 1e6, mb: 1e6, g: 1e9, gb: 1e9, t: 1e12, tb: 1e12,
  ki: 2 ** 10, kib: 2 ** 10, mi: 2 ** 20, mib: 2 ** 20, gi: 2 ** 30, gib: 2 ** 30, ti: 2 ** 40, tib: 2 ** 40,
}

/** Parses `150MB`, `20GiB`, `1.5G`, `512Ki` (or a bare number of bytes) into bytes; units are case-insensitive. */
export function parseSize (input: string | number): number {
  if (typeof input === 'number') {
    if (!Number.isFinite(input) || input < 0) throw new TypeError(`invalid size ${input}`)
    return Math.floor(input)
  }
  const m = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(input.trim())
  const unit = m === null ? undefined : UNITS[(m[2] as string).toLowerCase()]
  if (m === null || unit === undefined) throw new TypeError(`invalid size ${JSON.stringify(input)} (use e.g. 150MB, 20GiB, or a number of bytes)`)
  return Math.floor(Number(m[1]) * unit)
}
