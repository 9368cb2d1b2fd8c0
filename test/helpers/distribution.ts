import { randomBytes } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { startProcess, ProcessStartError, type ProcessHandle } from './child-process.js'
import { freePort } from './free-port.js'
import { makeTempDir, type TempDir } from './temp-dir.js'

export interface DistributionOptions {
  /** Storage root; a temp dir (removed by stop()) when omitted. Pass one to restart on the same data. */
  dataDir?: string
  /** Listen port on 127.0.0.1; a free one when omitted. */
  port?: number
  /** Append the registry's output (including its access log) here. */
  logFile?: string
  /** Keep Distribution's access log on stdout; default false. */
  hasAccessLog?: boolean
  /** Bound on startup; default 15 s. */
  readyTimeoutMs?: number
}

export interface DistributionProxyOptions extends DistributionOptions {
  /** Upstream the pull-through cache fetches from, e.g. `http://127.0.0.1:5000`. */
  remoteUrl: string
}

export interface Distribution {
  /** `http://127.0.0.1:<port>` */
  readonly url: string
  /** `127.0.0.1:<port>`, the registry part of an image reference. */
  readonly host: string
  readonly port: number
  readonly dataDir: string
  readonly process: ProcessHandle
  /** Stops the registry and removes the temp dirs it created (never a caller-supplied dataDir). */
  stop(): Promise<void>
  /** Stops the process (SIGTERM) and starts it again on the same port and data. */
  restart(): Promise<void>
  /** SIGKILLs the process without removing anything (restart() brings it back). */
  kill9(): Promise<void>
}

const REGISTRY_BIN = 'docker-registry'

/** Starts Debian's Distribution 2.8 (`docker-registry serve`) with filesystem storage. */
export async function startDistribution (options: DistributionOptions = {}): Promise<Distribution> {
  return await start(options, undefined)
}

/** Starts Distribution as a pull-through cache (`proxy.remoteurl`) in front of `remoteUrl`. */
export async function startDistributionProxy (options: DistributionProxyOptions): Promise<Distribution> {
  if (!/^https?:\/\//.test(options.remoteUrl)) throw new TypeError(`startDistributionProxy: remoteUrl must be http(s)://…, got ${options.remoteUrl}`)
  return await start(options, options.remoteUrl)
}

function configFor (dataDir: string, port: number, hasAccessLog: boolean, remoteUrl: string | undefined): string {
  const config: Record<string, unknown> = {
    version: 0.1,
    log: { level: 'warn', accesslog: { disabled: !hasAccessLog } },
    storage: {
      filesystem: { rootdirectory: dataDir },
      delete: { enabled: true },
      maintenance: { uploadpurging: { enabled: false } },
    },
    http: { addr: `127.0.0.1:${port}`, secret: randomBytes(16).toString('hex') },
  }
  if (remoteUrl !== undefined) config.proxy = { remoteurl: remoteUrl }
  // JSON is valid YAML: no YAML writer needed.
  return JSON.stringify(config, null, 2)
}

async function isV2Ok (url: string): Promise<boolean> {
  const res = await fetch(`${url}/v2/`, { signal: AbortSignal.timeout(1000) })
  await res.arrayBuffer()
  return res.status === 200
}

async function start (options: DistributionOptions, remoteUrl: string | undefined): Promise<Distribution> {
  const owned: TempDir[] = []
  const confDir = await makeTempDir('distribution-conf')
  owned.push(confDir)
  let dataDir = options.dataDir
  if (dataDir === undefined) {
    const tmp = await makeTempDir('distribution-data')
    owned.push(tmp)
    dataDir = tmp.path
  }
  const configPath = join(confDir.path, 'config.yml')
  const hasAccessLog = options.hasAccessLog ?? false

  const launch = async (port: number): Promise<ProcessHandle> => {
    await writeFile(configPath, configFor(dataDir, port, hasAccessLog, remoteUrl))
    const url = `http://127.0.0.1:${port}`
    return await startProcess(REGISTRY_BIN, ['serve', configPath], {
      name: `distribution:${port}`,
      logFile: options.logFile,
      readyCheck: async () => await isV2Ok(url),
      readyTimeoutMs: options.readyTimeoutMs ?? 15_000,
    })
  }

  let port = options.port ?? await freePort()
  let proc: ProcessHandle | undefined
  try {
    // A port from freePort() can be taken before we bind it: retry with another one.
    for (let attempt = 1; proc === undefined; attempt++) {
      try {
        proc = await launch(port)
      } catch (err) {
        const isInUse = err instanceof ProcessStartError && /address already in use/i.test(err.output)
        if (!isInUse || options.port !== undefined || attempt >= 5) throw err
        port = await freePort()
      }
    }
  } catch (err) {
    for (const dir of owned.reverse()) await dir.cleanup()
    throw err
  }

  let current: ProcessHandle = proc
  const url = `http://127.0.0.1:${port}`
  return {
    url,
    host: `127.0.0.1:${port}`,
    port,
    dataDir,
    get process () { return current },
    async stop () {
      await current.stop('SIGTERM', 5000)
      for (const dir of owned.reverse()) await dir.cleanup()
      owned.length = 0
    },
    async restart () {
      await current.stop('SIGTERM', 5000)
      current = await launch(port)
    },
    async kill9 () {
      await current.kill9()
    },
  }
}
