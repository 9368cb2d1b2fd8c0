import { OciError } from '../oci/index.js'
import type { ByteRange } from '../store/blob-store.js'

/**
 * Parses a single-range `Range: bytes=…` header against a blob size. Returns undefined for no header, a
 * multi-range request or a unit other than bytes (all answered whole); throws RANGE_INVALID for a malformed
 * or unsatisfiable bytes range.
 */
export function parseRangeHeader (header: string | undefined, size: number): ByteRange | undefined {
  if (header === undefined) return undefined
  // RFC 9110 §14.2: a range unit the server does not understand is ignored (200, whole body), not refused.
  // Units compare case-insensitively; the unit is a token.
  const unit = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+)=/.exec(header.trim())?.[1]
  if (unit !== undefined && unit.toLowerCase() !== 'bytes') return undefined
  const m = /^bytes=(\d*)-(\d*)$/i.exec(header.trim())
  if (m === null) {
    if (/^bytes=[\d\s,-]+$/i.test(header.trim()) && header.includes(',')) return undefined
    throw new OciError('RANGE_INVALID', `invalid Range header ${JSON.stringify(header.slice(0, 80))}`, { size })
  }
  const [, a = '', b = ''] = m
  if (a === '' && b === '') throw new OciError('RANGE_INVALID', 'invalid Range header: no bounds', { size })
  let start: number
  let end: number
  if (a === '') {
    const suffix = Number(b)
    if (suffix === 0) throw new OciError('RANGE_INVALID', 'range not satisfiable: empty suffix', { size })
    start = Math.max(0, size - suffix)
    end = size - 1
  } else {
    start = Number(a)
    end = b === '' ? size - 1 : Math.min(Number(b), size - 1)
    if (b !== '' && Number(b) < start) throw new OciError('RANGE_INVALID', 'invalid Range header: end before start', { size })
  }
  if (start >= size) throw new OciError('RANGE_INVALID', `range not satisfiable: blob is ${size} bytes`, { size })
  return { start, end }
}
