import type { Digest } from '../oci/index.js'

export class DigestMismatchError extends Error {
  override readonly name = 'DigestMismatchError'
  readonly code = 'ERR_DIGEST_MISMATCH'
  constructor (readonly expected: Digest, readonly actual: string, readonly expectedSize?: number, readonly actualSize?: number) {
    super(`content does not match ${expected}: got ${actual} (${actualSize ?? '?'} bytes${expectedSize === undefined ? '' : `, expected ${expectedSize}`})`)
  }
}

export class DataDirLockedError extends Error {
  override readonly name = 'DataDirLockedError'
  readonly code = 'ERR_DATA_DIR_LOCKED'
  constructor (readonly dir: string, readonly pid: number) {
    super(`data directory ${dir} is in use by another flotilla process (pid ${pid}); stop it or choose another --data-dir`)
  }
}
