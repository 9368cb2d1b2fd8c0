import { FlotillaError } from '../errors/flotilla-error.js'

/** Bad configuration: one line naming the field (or the file), shown as is by the CLI. */
export class ConfigError extends FlotillaError<'ERR_CONFIG'> {
  override readonly name = 'ConfigError'
  constructor (message: string, options?: ErrorOptions) {
    super('ERR_CONFIG', message, options)
  }
}
