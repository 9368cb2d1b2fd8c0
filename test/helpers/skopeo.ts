import { runCommandChecked, type CommandResult } from './run-command.js'

export interface SkopeoCopyOptions {
  /** Verify TLS on the source registry; default false (plain-HTTP test registries). */
  srcTls?: boolean
  /** Verify TLS on the destination registry; default false. */
  destTls?: boolean
  /** Copy every image of an index (`--all`), keeping the index. */
  all?: boolean
  /** Refuse any conversion that would change a digest (`--preserve-digests`). */
  preserveDigests?: boolean
  /** Convert to this manifest format (`--format`): `v2s2` makes Docker manifests and manifest lists. */
  format?: 'oci' | 'v2s2'
  /** A registries.conf, e.g. one that routes a registry through a mirror. */
  registriesConf?: string
  /** Default 120 s. */
  timeoutMs?: number
}

export interface SkopeoInspectOptions {
  /** Return the manifest bytes exactly as served instead of skopeo's summary. */
  raw?: boolean
  /** Verify TLS; default false. */
  tls?: boolean
  registriesConf?: string
  /** Default 30 s. */
  timeoutMs?: number
}

/** skopeo's non-raw `inspect` summary (the fields tests use). */
export interface SkopeoInspectInfo {
  Name?: string
  Digest: string
  Architecture: string
  Os: string
  Layers: string[]
  [key: string]: unknown
}

// --insecure-policy: no dependency on the machine's /etc/containers/policy.json.
function globalArgs (registriesConf: string | undefined): string[] {
  const args = ['--insecure-policy']
  if (registriesConf !== undefined) args.push('--registries-conf', registriesConf)
  return args
}

/** `skopeo copy` between any two transports (`docker://`, `oci:`, `dir:`); throws with stderr on failure. */
export async function skopeoCopy (src: string, dest: string, options: SkopeoCopyOptions = {}): Promise<CommandResult> {
  const args = [...globalArgs(options.registriesConf), 'copy', '--quiet']
  if (options.all === true) args.push('--all')
  if (options.preserveDigests === true) args.push('--preserve-digests')
  if (options.format !== undefined) args.push('--format', options.format)
  if (options.srcTls !== true && src.startsWith('docker://')) args.push('--src-tls-verify=false')
  if (options.destTls !== true && dest.startsWith('docker://')) args.push('--dest-tls-verify=false')
  args.push(src, dest)
  return await runCommandChecked('skopeo', args, { timeoutMs: options.timeoutMs ?? 120_000 })
}

/** `skopeo inspect --raw`: the manifest (or index) bytes as the registry served them. */
export async function skopeoInspect (ref: string, options: SkopeoInspectOptions & { raw: true }): Promise<Buffer>
/** `skopeo inspect`: skopeo's parsed summary (resolves an index to this machine's platform). */
export async function skopeoInspect (ref: string, options?: SkopeoInspectOptions & { raw?: false }): Promise<SkopeoInspectInfo>
export async function skopeoInspect (ref: string, options: SkopeoInspectOptions = {}): Promise<Buffer | SkopeoInspectInfo> {
  const args = [...globalArgs(options.registriesConf), 'inspect']
  if (options.raw === true) args.push('--raw')
  if (options.tls !== true && ref.startsWith('docker://')) args.push('--tls-verify=false')
  args.push(ref)
  const result = await runCommandChecked('skopeo', args, { timeoutMs: options.timeoutMs ?? 30_000 })
  if (options.raw === true) return result.stdoutBytes
  return JSON.parse(result.stdout) as SkopeoInspectInfo
}
