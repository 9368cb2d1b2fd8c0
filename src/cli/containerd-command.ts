import type { Command } from 'commander'
import { collectOption } from './collect-option.js'

/**
 * `flotilla containerd configure|restore|check`: points the node's containerd at the agent through
 * certs.d hosts.toml files, undoes that byte for byte, and checks the wiring. The hosts.toml code (and
 * the gRPC clients `check` needs, built in roles/) is imported inside the actions so `flotilla --help` stays fast.
 */

const DEFAULT_CERTS_DIR = '/etc/containerd/certs.d'
const DEFAULT_MIRROR = 'http://127.0.0.1:5000'
const DEFAULT_SOCKET = '/run/containerd/containerd.sock'
const DEFAULT_NAMESPACE = 'k8s.io'

export class ContainerdCommandError extends Error {
  override readonly name = 'ContainerdCommandError'
  constructor (readonly code: 'ERR_CLI_OPTION_INVALID' | 'ERR_CHECK_FAILED', message: string) {
    super(message)
  }
}

interface ConfigureOptions {
  certsDir: string
  mirror: string
  registry?: string[]
  upstream?: string[]
  dialTimeout: string
  dryRun?: boolean
}

interface RestoreOptions {
  certsDir: string
  registry?: string[]
  dryRun?: boolean
}

interface CheckOptions {
  socket: string
  namespace: string
  certsDir: string
  mirror: string
  registry?: string[]
  timeout: string
}


function print (line: string): void {
  process.stdout.write(`${line}\n`)
}

/** `--upstream NAME=URL` pairs; each NAME must be one of the `--registry` names. */
function parseUpstreams (pairs: readonly string[], registries: readonly string[]): Map<string, string> {
  const upstreams = new Map<string, string>()
  for (const pair of pairs) {
    const eq = pair.indexOf('=')
    const name = pair.slice(0, Math.max(eq, 0))
    const url = pair.slice(eq + 1)
    if (eq <= 0 || url === '') {
      throw new ContainerdCommandError('ERR_CLI_OPTION_INVALID', `--upstream ${JSON.stringify(pair)}: expected NAME=URL, e.g. docker.io=https://registry-1.docker.io`)
    }
    let parsed: URL | undefined
    try {
      parsed = new URL(url)
    } catch {
      parsed = undefined
    }
    if (parsed === undefined || (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')) {
      throw new ContainerdCommandError('ERR_CLI_OPTION_INVALID', `--upstream ${JSON.stringify(pair)}: ${JSON.stringify(url)} is not an http(s) URL`)
    }
    if (!registries.includes(name)) {
      // _default/hosts.toml has no server line: an upstream there would be silently dropped.
      throw new ContainerdCommandError('ERR_CLI_OPTION_INVALID', `--upstream ${JSON.stringify(pair)}: ${name} is not one of the --registry names`)
    }
    upstreams.set(name, url)
  }
  return upstreams
}

export function registerContainerd (program: Command): void {
  const containerd = program.command('containerd')
    .description("point the node's containerd at the agent (certs.d hosts.toml), undo it, check it")

  containerd.command('configure')
    .description('write <certs-dir>/<registry>/hosts.toml with the agent first, keeping (and backing up) existing files')
    .option('--certs-dir <dir>', "containerd's registry config_path", DEFAULT_CERTS_DIR)
    .option('--mirror <url>', 'the agent as containerd reaches it', DEFAULT_MIRROR)
    .option('--registry <name>', 'route this registry through the agent (repeatable; none means _default, every registry)', collectOption)
    .option('--upstream <name=url>', "the `server` fallback for a --registry (default https://<name>, Docker Hub's API host for docker.io)", collectOption)
    .option('--dial-timeout <duration>', 'Go duration bounding the dial to the agent', '200ms')
    .option('--dry-run', 'print the files instead of writing them')
    .action(async (opts: ConfigureOptions) => {
      const registries = opts.registry ?? []
      const upstreams = parseUpstreams(opts.upstream ?? [], registries)
      const { configureHosts } = await import('../containerd/hosts-config.js')
      const files = await configureHosts({
        certsDir: opts.certsDir,
        mirrorUrl: opts.mirror,
        registries,
        upstreams,
        dialTimeout: opts.dialTimeout,
        dryRun: opts.dryRun === true,
      })
      for (const file of files) {
        if (opts.dryRun === true) {
          print(`# ${file.action} ${file.path} (dry run)`)
          process.stdout.write(file.content.endsWith('\n') ? file.content : `${file.content}\n`)
        } else {
          print(`${file.action} ${file.path}`)
        }
      }
    })

  containerd.command('restore')
    .description('undo configure: put back the original hosts.toml byte for byte, or remove ours')
    .option('--certs-dir <dir>', "containerd's registry config_path", DEFAULT_CERTS_DIR)
    .option('--registry <name>', 'restore only this registry (repeatable; none means every one flotilla configured)', collectOption)
    .option('--dry-run', 'print what would be done without touching the files')
    .action(async (opts: RestoreOptions) => {
      const { restoreHosts } = await import('../containerd/hosts-config.js')
      const files = await restoreHosts({ certsDir: opts.certsDir, registries: opts.registry ?? [], dryRun: opts.dryRun === true })
      if (files.length === 0) print(`nothing to restore under ${opts.certsDir}`)
      for (const file of files) print(`${file.action} ${file.path}${opts.dryRun === true ? ' (dry run)' : ''}`)
    })

  containerd.command('check')
    .description('check that containerd answers, reads hosts.toml from the certs dir, lists the agent first, and the agent answers; warn (!) about what makes that useless')
    .option('--socket <path>', "containerd's socket", DEFAULT_SOCKET)
    .option('--namespace <ns>', 'containerd namespace', DEFAULT_NAMESPACE)
    .option('--certs-dir <dir>', "containerd's registry config_path", DEFAULT_CERTS_DIR)
    .option('--mirror <url>', 'the agent as containerd reaches it', DEFAULT_MIRROR)
    .option('--registry <name>', 'a registry routed through the agent (repeatable; none means _default)', collectOption)
    .option('--timeout <duration>', 'bound on each check', '2s')
    .action(async (opts: CheckOptions) => {
      const { parseDuration } = await import('../config/duration.js')
      let timeoutMs: number
      try {
        timeoutMs = parseDuration(opts.timeout)
      } catch (err) {
        throw new ContainerdCommandError('ERR_CLI_OPTION_INVALID', `--timeout: ${(err as Error).message}`)
      }
      if (!(timeoutMs > 0)) throw new ContainerdCommandError('ERR_CLI_OPTION_INVALID', '--timeout must be more than 0')
      const { checkContainerdWiring } = await import('../roles/check-containerd-wiring.js')
      const checks = await checkContainerdWiring({
        socket: opts.socket,
        namespace: opts.namespace,
        certsDir: opts.certsDir,
        mirrorUrl: opts.mirror,
        registries: opts.registry ?? [],
        timeoutMs,
      })
      for (const c of checks) print(`${c.isWarning === true ? '!' : c.ok ? '✓' : '✗'} ${c.check}: ${c.detail}`)
      const failed = checks.filter((c) => !c.ok).length
      if (failed > 0) throw new ContainerdCommandError('ERR_CHECK_FAILED', `${failed} of ${checks.length} checks failed`)
    })
}
