import { OciError } from './oci-error.js'

export type Digest = string & { readonly __brand: 'Digest' }
export type DigestAlgorithm = 'sha256' | 'sha512'

const HEX_LENGTH: Record<DigestAlgorithm, number> = { sha256: 64, sha512: 128 }
const DIGEST_RE = /^([a-z0-9]+(?:[+._-][a-z0-9]+)*):([a-zA-Z0-9=_-]+)$/

export interface ParsedDigest {
  readonly digest: Digest
  readonly algorithm: DigestAlgorithm
  readonly hex: string
}

/** Parses `algorithm:hex`; only sha256 and sha512 with lowercase hex of the right length are accepted. */
export function parseDigest (input: string): ParsedDigest {
  const m = DIGEST_RE.exec(input)
  if (m === null) throw new OciError('DIGEST_INVALID', `invalid digest ${JSON.stringify(truncate(input))}`)
  const algorithm = m[1] as string
  const hex = m[2] as string
  if (algorithm !== 'sha256' && algorithm !== 'sha512') {
    throw new OciError('DIGEST_INVALID', `unsupported digest algorithm ${JSON.stringify(truncate(algorithm))}`)
  }
  if (hex.length !== HEX_LENGTH[algorithm] || !/^[a-f0-9]+$/.test(hex)) {
    throw new OciError('DIGEST_INVALID', `invalid ${algorithm} digest: expected ${HEX_LENGTH[algorithm]} lowercase hex characters`)
  }
  return { digest: input as Digest, algorithm, hex }
}

export function isDigest (input: string): boolean {
  try {
    parseDigest(input)
    return true
  } catch {
    return false
  }
}

export function truncate (s: string, max = 80): string {
  return s.length > max ? `${s.slice(0, max)}…` : s
}
