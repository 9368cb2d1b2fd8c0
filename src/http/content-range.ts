export interface ContentRange {
  readonly start: number
  readonly end: number
  /** Undefined when the server answered `*`. */
  readonly total?: number
}

const CONTENT_RANGE_RE = /^bytes\s+(\d+)-(\d+)\/(\d+|\*)$/i

/** Parses `Content-Range: bytes start-end/total` of a 206; undefined for anything else. */
export function parseContentRange (value: string | undefined): ContentRange | undefined {
  const m = value === undefined ? null : CONTENT_RANGE_RE.exec(value.trim())
  if (m === null) return undefined
  const start = Number(m[1])
  const end = Number(m[2])
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || end < start) return undefined
  if (m[3] === '*') return { start, end }
  const total = Number(m[3])
  return Number.isSafeInteger(total) && total > end ? { start, end, total } : undefined
}
