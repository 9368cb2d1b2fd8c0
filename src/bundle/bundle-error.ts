import type { BundleErrorCode } from '../errors/error-code.js'
import { FlotillaError, hasCode, type FlotillaErrorOptions } from '../errors/flotilla-error.js'

export type { BundleErrorCode } from '../errors/error-code.js'

/** A bundle that cannot be written or read: the message is one line naming the file, entry or digest. */
export class BundleError extends FlotillaError<BundleErrorCode> {
  override readonly name = 'BundleError'
  constructor (code: BundleErrorCode, message: string, options?: FlotillaErrorOptions) {
    super(code, message, options)
  }
}

/** The store's digest check failing (DigestMismatchError) as the bundle's ERR_BUNDLE_DIGEST, `where` in front. */
export function asBundleDigestError (err: unknown, where: string): unknown {
  return hasCode(err, 'ERR_DIGEST_MISMATCH') ? new BundleError('ERR_BUNDLE_DIGEST', `${where}: ${err.message}`, { cause: err }) : err
}
