import type { KubeErrorCode } from '../errors/error-code.js'
import { FlotillaError } from '../errors/flotilla-error.js'

export type { KubeErrorCode } from '../errors/error-code.js'

/** A failed read from the Kubernetes API, or a name or label that Kubernetes would not accept. */
export class KubeError extends FlotillaError<KubeErrorCode> {
  override readonly name = 'KubeError'
}
