import { Option, type Command } from 'commander'
import type { ConfigOverrides } from '../config/config-overrides.js'
import { loadConfig } from '../config/load-config.js'
import { formatDefault, overrideKey, type OptionDeclaration } from '../config/option.js'
import { OPTIONS } from '../config/options.js'
import { createLogger } from '../logger.js'
import { collectOption } from './collect-option.js'

/** A commander option for a declared one; no commander default, so an unset flag leaves env and file alone. */
function flagOption (d: OptionDeclaration & { flag: string }): Option {
  const notes = [formatDefault(d) === undefined ? '' : `default ${formatDefault(d)}`, d.isList === true ? 'repeatable' : '', d.env === undefined ? '' : `env ${d.env}`]
    .filter((n) => n !== '')
  const option = new Option(d.flag, notes.length === 0 ? d.help : `${d.help} (${notes.join('; ')})`)
  return d.isList === true ? option.argParser(collectOption) : option
}

export function registerServe (program: Command): void {
  const flags = OPTIONS.filter((d): d is Extract<typeof d, { flag: string }> => 'flag' in d).map((d) => ({ key: overrideKey(d), option: flagOption(d) }))
  const serve = program.command('serve')
    .description('serve the OCI pull API as a pull-through mirror (single node with no configuration)')
    .option('-c, --config <file>', 'YAML configuration file (env FLOTILLA_CONFIG)')
  for (const { option } of flags) serve.addOption(option)
  serve.action(async (opts: Record<string, unknown>) => {
    const overrides = Object.fromEntries(flags.map(({ key, option }) => [key, opts[option.attributeName()]])) as ConfigOverrides
    const file = (opts.config as string | undefined) ?? process.env.FLOTILLA_CONFIG
    const config = await loadConfig(file === '' ? undefined : file, overrides)
    const logger = createLogger(config.logLevel)
    const { startDaemon } = await import('../daemon.js')
    const daemon = await startDaemon(config, logger)
    let signals = 0
    const stop = (signal: string): void => {
      signals++
      if (signals > 1) {
        logger.warn({ signal }, 'second signal; exiting now')
        process.exit(1)
      }
      logger.info({ signal }, 'stopping: no new connections, letting responses finish')
      daemon.close().then(() => process.exit(0), (err: unknown) => {
        logger.error({ err }, 'shutdown failed')
        process.exit(1)
      })
    }
    process.on('SIGTERM', () => stop('SIGTERM'))
    process.on('SIGINT', () => stop('SIGINT'))
  })
}
