import { spawnSync } from 'node:child_process'
import { readFileSync, readdirSync } from 'node:fs'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { startProcess, type ProcessHandle } from './child-process.js'
import { runCommand, runCommandChecked, CommandError, formatCommand, type CommandResult } from './run-command.js'
import { makeTempDir } from './temp-dir.js'
import { onExit } from './on-exit.js'

export type Snapshotter = 'overlayfs' | 'native'

export interface ContainerdOptions {
  /** certs.d directory for CRI's `registry.config_path`; `<tmp>/certs.d` (removed on stop) when omitted. */
  certsDir?: string
  /** Default: overlayfs when an overlay mount works in the temp dir, native otherwise. */
  snapshotter?: Snapshotter
  /** Default namespace for ctr() and pull(); default 'k8s.io'. */
  namespace?: string
  /** Append containerd's log here. */
  logFile?: string
  /** containerd log level; default 'warn'. */
  logLevel?: 'debug' | 'info' | 'warn' | 'error'
  /** Bound on startup; default 20 s. */
  readyTimeoutMs?: number
  /**
   * Run the daemon inside this network namespace (`ip netns exec NAME containerd …`): its own pulls (CRI,
   * transfer) then dial from there, e.g. to an agent on the namespace's 127.0.0.1. The sockets stay files.
   */
  netns?: string
}

export interface CtrOptions {
  /** Default 60 s. */
  timeoutMs?: number
  /** Overrides the instance's namespace. */
  namespace?: string
}

export interface PullOptions extends CtrOptions {
  /** `--hosts-dir`: a certs.d directory (default: the instance's certsDir). */
  hostsDir?: string
  /** `--plain-http`; default true (test registries speak HTTP). */
  plainHttp?: boolean
  /** e.g. 'linux/arm64'; default this machine's platform. */
  platform?: string
  /** `--all-platforms` */
  allPlatforms?: boolean
  /** Resolve with the result instead of throwing on a non-zero exit. */
  allowFailure?: boolean
}

export interface Containerd {
  readonly socket: string
  readonly root: string
  readonly state: string
  /** `<root>/io.containerd.content.v1.content`; blobs under `blobs/sha256/<hex>`. */
  readonly contentDir: string
  readonly certsDir: string
  readonly snapshotter: Snapshotter
  readonly namespace: string
  readonly process: ProcessHandle
  /** The path a blob has (or would have) in the content store. */
  blobPath(digest: string): string
  /** `ctr --address <socket> -n <ns> <args…>`, bounded; never throws on a non-zero exit. */
  ctr(args: readonly string[], options?: CtrOptions): Promise<CommandResult>
  /** `ctr images pull` with the instance's snapshotter; throws a CommandError on failure unless allowFailure. */
  pull(ref: string, options?: PullOptions): Promise<CommandResult>
  /** Kills tasks and shims, stops containerd, unmounts leftovers and removes its temp dirs. */
  stop(): Promise<void>
}

export interface HostsTomlMirror {
  /** e.g. `http://127.0.0.1:5001` */
  url: string
  /** default ['pull', 'resolve'] */
  capabilities?: Array<'pull' | 'resolve' | 'push'>
  /** e.g. '200ms' */
  dialTimeout?: string
  skipVerify?: boolean
  overridePath?: boolean
}

export interface HostsTomlOptions {
  /** Upstream fallback (`server = …`); omitted for `_default`. */
  server?: string
  /** Tried in order before `server`. containerd 1.6 rejects a file without any host table. */
  mirrors: HostsTomlMirror[]
}

const CONTAINERD_BIN = 'containerd'
const CTR_BIN = 'ctr'

const toml = (value: string): string => JSON.stringify(value) // TOML basic strings share JSON's escapes here

/** Writes `<certsDir>/<registryHost>/hosts.toml` (registryHost like `docker.io`, `127.0.0.1:5000`, `_default`). */
export async function writeHostsToml (certsDir: string, registryHost: string, options: HostsTomlOptions): Promise<string> {
  if (registryHost === '' || registryHost.includes('/')) throw new TypeError(`writeHostsToml: bad registry host ${JSON.stringify(registryHost)}`)
  if (options.mirrors.length === 0) throw new TypeError('writeHostsToml: containerd 1.6 ignores a hosts.toml without a [host] table; give at least one mirror')
  const lines: string[] = []
  if (options.server !== undefined) lines.push(`server = ${toml(options.server)}`, '')
  for (const m of options.mirrors) {
    lines.push(`[host.${toml(m.url)}]`)
    lines.push(`  capabilities = [${(m.capabilities ?? ['pull', 'resolve']).map(toml).join(', ')}]`)
    if (m.dialTimeout !== undefined) lines.push(`  dial_timeout = ${toml(m.dialTimeout)}`)
    if (m.skipVerify !== undefined) lines.push(`  skip_verify = ${String(m.skipVerify)}`)
    if (m.overridePath !== undefined) lines.push(`  override_path = ${String(m.overridePath)}`)
    lines.push('')
  }
  const dir = join(certsDir, registryHost)
  await mkdir(dir, { recursive: true })
  const path = join(dir, 'hosts.toml')
  await writeFile(path, lines.join('\n'))
  return path
}

function configToml (p: { root: string, state: string, socket: string, certsDir: string, snapshotter: Snapshotter, cniConfDir: string, logLevel: string }): string {
  const cri = 'plugins."io.containerd.grpc.v1.cri"'
  return `version = 2
root = ${toml(p.root)}
state = ${toml(p.state)}

[grpc]
  address = ${toml(p.socket)}

[ttrpc]
  address = ${toml(`${p.socket}.ttrpc`)}

[debug]
  level = ${toml(p.logLevel)}

[plugins."io.containerd.internal.v1.opt"]
  path = ${toml(join(p.root, 'opt'))}

[${cri}]
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"

[${cri}.containerd]
  snapshotter = ${toml(p.snapshotter)}
  default_runtime_name = "runc"

[${cri}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[${cri}.cni]
  bin_dir = "/usr/lib/cni"
  conf_dir = ${toml(p.cniConfDir)}

[${cri}.registry]
  config_path = ${toml(p.certsDir)}
`
}

/** True when the kernel lets us mount overlayfs with upper/work dirs on `dir`'s filesystem. */
async function canMountOverlay (dir: string): Promise<boolean> {
  const probe = join(dir, 'overlay-probe')
  const [lower, upper, work, merged] = ['lower', 'upper', 'work', 'merged'].map((d) => join(probe, d)) as [string, string, string, string]
  for (const d of [lower, upper, work, merged]) await mkdir(d, { recursive: true })
  const mounted = await runCommand('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${lower},upperdir=${upper},workdir=${work}`, merged], { timeoutMs: 5000 })
  if (mounted.code !== 0) return false
  await runCommandChecked('umount', [merged], { timeoutMs: 5000 })
  return true
}

/** Mount points at or below one of `dirs`, deepest first (mountinfo field 5, octal escapes decoded). */
function mountsUnder (dirs: readonly string[]): string[] {
  const points = readFileSync('/proc/self/mountinfo', 'utf8').split('\n')
    .map((line) => line.split(' ')[4])
    .filter((p): p is string => p !== undefined)
    .map((p) => p.replace(/\\([0-7]{3})/g, (_m, oct: string) => String.fromCharCode(parseInt(oct, 8))))
    .filter((p) => dirs.some((d) => p === d || p.startsWith(`${d}/`)))
  return [...new Set(points)].sort((a, b) => b.length - a.length)
}

function readProc (pid: string, file: string): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/${file}`, 'utf8')
  } catch {
    return undefined // the process went away while we looked
  }
}

/**
 * PIDs of the shims serving the daemon on `socket`, each followed by its direct children (container
 * init processes, which a dead shim would leave running).
 */
function shimProcesses (socket: string): number[] {
  const entries = readdirSync('/proc').filter((e) => /^\d+$/.test(e))
  const shims = entries.filter((pid) => {
    const argv = (readProc(pid, 'cmdline') ?? '').split('\0')
    const i = argv.indexOf('-address')
    return (argv[0] ?? '').includes('containerd-shim') && i >= 0 && argv[i + 1] === socket
  })
  const children = entries.filter((pid) => {
    // /proc/<pid>/stat: "pid (comm) state ppid …"; comm may contain spaces, so split after ')'.
    const stat = readProc(pid, 'stat') ?? ''
    const ppid = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]
    return ppid !== undefined && shims.includes(ppid)
  })
  return [...children, ...shims].map(Number)
}

/**
 * Synchronous teardown of what outlives containerd: container processes, shims, mounts. Used by
 * stop() after the daemon is gone and, at process exit, when a test never called stop().
 */
function reapLeftovers (socket: string, dirs: readonly string[]): void {
  for (const pid of shimProcesses(socket)) {
    try { process.kill(pid, 'SIGKILL') } catch { /* already gone */ }
  }
  for (const mountPoint of mountsUnder(dirs)) spawnSync('umount', ['-l', mountPoint], { timeout: 5000, stdio: 'ignore' })
}

/**
 * Starts a private containerd (root, state, sockets and certs.d under one temp dir) and waits until
 * `ctr version` answers. Requires root.
 */
export async function startContainerd (options: ContainerdOptions = {}): Promise<Containerd> {
  const tmp = await makeTempDir('containerd')
  const root = join(tmp.path, 'root')
  const state = join(tmp.path, 'state')
  const socket = join(state, 'containerd.sock')
  const certsDir = options.certsDir ?? join(tmp.path, 'certs.d')
  const cniConfDir = join(tmp.path, 'cni')
  const namespace = options.namespace ?? 'k8s.io'
  // Registered after the temp dir and before the daemon, so at exit it runs after the daemon is
  // killed and before the dir is removed (onExit runs newest first).
  const unregisterReap = onExit(() => reapLeftovers(socket, [root, state]))
  let proc: ProcessHandle | undefined
  try {
    for (const d of [root, state, certsDir, cniConfDir]) await mkdir(d, { recursive: true })
    const snapshotter = options.snapshotter ?? (await canMountOverlay(tmp.path) ? 'overlayfs' : 'native')
    const configPath = join(tmp.path, 'config.toml')
    await writeFile(configPath, configToml({ root, state, socket, certsDir, snapshotter, cniConfDir, logLevel: options.logLevel ?? 'warn' }))

    const ctrRaw = async (args: readonly string[], timeoutMs: number): Promise<CommandResult> =>
      await runCommand(CTR_BIN, ['--address', socket, ...args], { timeoutMs })

    const [daemonCmd, daemonArgs] = options.netns === undefined
      ? [CONTAINERD_BIN, ['--config', configPath]]
      : ['ip', ['netns', 'exec', options.netns, CONTAINERD_BIN, '--config', configPath]]
    proc = await startProcess(daemonCmd, daemonArgs, {
      name: 'containerd',
      logFile: options.logFile,
      readyTimeoutMs: options.readyTimeoutMs ?? 20_000,
      readyIntervalMs: 100,
      readyCheck: async () => (await ctrRaw(['version'], 2000)).code === 0,
    })
    const daemon = proc

    const ctr = async (args: readonly string[], o: CtrOptions = {}): Promise<CommandResult> =>
      await ctrRaw(['-n', o.namespace ?? namespace, ...args], o.timeoutMs ?? 60_000)

    let stopped: Promise<void> | undefined
    const stop = async (): Promise<void> => {
      if (daemon.isRunning) {
        // Best effort: containers a test left running would otherwise outlive the daemon.
        const nsList = await ctrRaw(['namespaces', 'ls', '-q'], 5000)
        for (const ns of nsList.code === 0 ? nsList.stdout.split('\n').filter(Boolean) : []) {
          const tasks = await ctrRaw(['-n', ns, 'tasks', 'ls', '-q'], 5000)
          for (const id of tasks.code === 0 ? tasks.stdout.split('\n').filter(Boolean) : []) {
            await ctrRaw(['-n', ns, 'tasks', 'kill', '-s', 'SIGKILL', id], 5000)
            await ctrRaw(['-n', ns, 'tasks', 'delete', '-f', id], 5000)
          }
        }
      }
      await daemon.stop('SIGTERM', 10_000)
      reapLeftovers(socket, [root, state])
      unregisterReap()
      await tmp.cleanup()
    }

    return {
      socket,
      root,
      state,
      contentDir: join(root, 'io.containerd.content.v1.content'),
      certsDir,
      snapshotter,
      namespace,
      process: daemon,
      blobPath (digest) {
        const [algorithm, hex] = digest.split(':')
        if (algorithm === undefined || hex === undefined || !/^[a-f0-9]+$/.test(hex)) throw new TypeError(`bad digest ${digest}`)
        return join(root, 'io.containerd.content.v1.content', 'blobs', algorithm, hex)
      },
      ctr,
      async pull (ref, o = {}) {
        const args = ['images', 'pull', '--snapshotter', snapshotter, '--hosts-dir', o.hostsDir ?? certsDir]
        if (o.plainHttp ?? true) args.push('--plain-http')
        if (o.platform !== undefined) args.push('--platform', o.platform)
        if (o.allPlatforms === true) args.push('--all-platforms')
        args.push(ref)
        const result = await ctr(args, { timeoutMs: o.timeoutMs ?? 120_000, namespace: o.namespace })
        if ((result.code !== 0 || result.isTimedOut) && o.allowFailure !== true) {
          throw new CommandError(formatCommand(CTR_BIN, ['--address', socket, '-n', o.namespace ?? namespace, ...args]), result)
        }
        return result
      },
      stop () {
        stopped ??= stop()
        return stopped
      },
    }
  } catch (err) {
    await proc?.stop('SIGTERM', 5000)
    reapLeftovers(socket, [root, state])
    unregisterReap()
    await tmp.cleanup()
    throw err
  }
}
