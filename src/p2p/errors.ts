import type { P2pErrorCode } from '../errors/error-code.js'
import { FlotillaError } from '../errors/flotilla-error.js'

export type { P2pErrorCode } from '../errors/error-code.js'

export class P2pError extends FlotillaError<P2pErrorCode> {
  override readonly name = 'P2pError'
}
