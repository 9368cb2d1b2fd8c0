import { FlotillaError } from '../errors/flotilla-error.js'
import type { Digest } from '../oci/index.js'

export class DigestMismatchError extends FlotillaError<'ERR_DIGEST_MISMATCH'> {
  override readonly name = 'DigestMismatchError'
  constructor (readonly expected: Digest, readonly actual: string, readonly expectedSize?: number, readonly actualSize?: number) {
    super('ERR_DIGEST_MISMATCH', `content does not match ${expected}: got ${actual} (${actualSize ?? '?'} bytes${expectedSize === undefined ? '' : `, expected ${expectedSize}`})`)
  }
}

export class DataDirLockedError extends FlotillaError<'ERR_DATA_DIR_LOCKED'> {
  override readonly name = 'DataDirLockedError'
  constructor (readonly dir: string, readonly pid: number) {
    super('ERR_DATA_DIR_LOCKED', `data directory ${dir} is in use by another flotilla process (pid ${pid}); stop it or choose another --data-dir`)
  }
}
