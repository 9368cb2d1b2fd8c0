import { Option, type Command } from 'commander'

/**
 * `flotilla manifests --role agent|mirror|redirector`: the role's Kubernetes manifests on stdout, for
 * `kubectl apply -f -`, customised by namespace, image and configuration file. deploy/ holds the defaults.
 */

export class ManifestsCommandError extends Error {
  override readonly name = 'ManifestsCommandError'
  constructor (readonly code: 'ERR_CLI_OPTION_INVALID' | 'ERR_CONFIG', message: string) {
    super(message)
  }
}

interface ManifestsOptions {
  role: 'agent' | 'mirror' | 'redirector'
  namespace: string
  image?: string
  config?: string
  uninstall?: boolean
}

/** The file's text when it is YAML that `flotilla serve` would accept; else a one-line error. */
async function readConfigFile (file: string): Promise<string> {
  const [{ readFile }, { parse }, { buildConfig }] = await Promise.all([
    import('node:fs/promises'), import('yaml'), import('../config/load-config.js'),
  ])
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    throw new ManifestsCommandError('ERR_CLI_OPTION_INVALID', `--config: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
  }
  let raw: unknown
  try {
    raw = parse(text)
  } catch (err) {
    throw new ManifestsCommandError('ERR_CONFIG', `--config ${file}: not valid YAML: ${(err as Error).message.split('\n')[0] ?? ''}`)
  }
  try {
    buildConfig(raw)
  } catch (err) {
    throw new ManifestsCommandError('ERR_CONFIG', `--config ${file}: ${(err as Error).message.split('\n')[0] ?? ''}`)
  }
  return text
}

export function registerManifests (program: Command): void {
  program.command('manifests')
    .description('print the Kubernetes manifests of a role (kubectl apply -f -); deploy/ holds the defaults')
    .addOption(new Option('--role <role>', 'agent (DaemonSet on every node), mirror (central cache) or redirector')
      .choices(['agent', 'mirror', 'redirector']).makeOptionMandatory())
    .option('--namespace <ns>', 'namespace of every object (create it first)', 'flotilla')
    .option('--image <ref>', 'flotilla image (default ghcr.io/flotilla/flotilla:<this version>)')
    .option('--config <file>', "the role's configuration (flotilla serve --config), embedded in its ConfigMap; checked first")
    .option('--uninstall', "with --role agent: the uninstall step instead (flotilla containerd restore on every node)")
    .action(async (opts: ManifestsOptions) => {
      if (opts.uninstall === true && opts.role !== 'agent') {
        throw new ManifestsCommandError('ERR_CLI_OPTION_INVALID', '--uninstall goes with --role agent only (the other roles leave nothing on the nodes)')
      }
      const [{ DEFAULT_IMAGE }, render] = await Promise.all([import('../deploy/default-image.js'), import('../deploy/render-manifests.js')])
      const configYaml = opts.config === undefined ? undefined : await readConfigFile(opts.config)
      const options = { namespace: opts.namespace, image: opts.image ?? DEFAULT_IMAGE, ...(configYaml === undefined ? {} : { configYaml }) }
      let yaml: string
      try {
        yaml = opts.uninstall === true ? render.renderAgentRestoreManifests(options) : render.renderManifests(opts.role, options)
      } catch (err) {
        if (err instanceof TypeError) throw new ManifestsCommandError('ERR_CLI_OPTION_INVALID', `--${err.message}`)
        throw err
      }
      process.stdout.write(yaml)
    })
}
