import type { BundleErrorCode } from '../errors/error-code.js'
import { FlotillaError, type FlotillaErrorOptions } from '../errors/flotilla-error.js'

export type { BundleErrorCode } from '../errors/error-code.js'

/** A bundle that cannot be written or read: the message is one line naming the file, entry or digest. */
export class BundleError extends FlotillaError<BundleErrorCode> {
  override readonly name = 'BundleError'
  constructor (code: BundleErrorCode, message: string, options?: FlotillaErrorOptions) {
    super(code, message, options)
  }
}
