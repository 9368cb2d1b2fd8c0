/** Bad configuration: one line naming the field (or the file), shown as is by the CLI. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError'
  readonly code = 'ERR_CONFIG'
}
