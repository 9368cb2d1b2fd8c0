import { parse, stringify, TomlError } from 'smol-toml'
import { DOCKER_HUB, normalizeRegistry } from '../oci/index.js'
import type { ContainerdErrorCode } from '../errors/error-code.js'
import { FlotillaError } from '../errors/flotilla-error.js'

/**
 * containerd `certs.d/<registry>/hosts.toml` rendering and merging. Pure: no I/O. containerd tries the
 * `[host."…"]` tables in file order, then `server`; we put the agent first and keep whatever the node
 * already had (private CAs, other mirrors) after it.
 */

/** First line of every file flotilla writes; restore only deletes files that carry it. */
export const HOSTS_TOML_MARKER = '# Managed by flotilla'
/** The directory containerd consults for every registry without its own. */
export const DEFAULT_HOSTS_DIR = '_default'
export const DEFAULT_DIAL_TIMEOUT = '200ms'
export const MIRROR_CAPABILITIES = ['pull', 'resolve'] as const

export type HostsTomlErrorCode = Extract<ContainerdErrorCode, 'ERR_HOSTS_TOML_INVALID' | 'ERR_HOSTS_OPTION_INVALID'>

export class HostsTomlError extends FlotillaError<HostsTomlErrorCode> {
  override readonly name = 'HostsTomlError'
}

type TomlTable = Record<string, unknown>

export interface ParsedHostsToml {
  readonly server?: string
  /** Top-level keys other than `server` and `host` (ca, client, skip_verify, header, …), in file order. */
  readonly topLevel: TomlTable
  /** `[host."<url>"]` tables in file order. */
  readonly hosts: ReadonlyArray<readonly [url: string, table: TomlTable]>
}

export interface RenderHostsTomlOptions {
  /** The agent, e.g. `http://127.0.0.1:5000`. */
  readonly mirrorUrl: string
  /** Upstream fallback; omitted for `_default` (containerd then uses the image's registry). */
  readonly server?: string
  /** Go duration bounding the dial to the agent; default `200ms`. */
  readonly dialTimeout?: string
  /** The node's original hosts.toml, whose settings are kept after ours. */
  readonly original?: string
}

const GO_DURATION_RE = /^(?:\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h))+$/

export function parseHostsToml (text: string): ParsedHostsToml {
  let doc: TomlTable
  try {
    doc = parse(text) as TomlTable
  } catch (err) {
    const where = err instanceof TomlError ? ` (line ${err.line}, column ${err.column})` : ''
    throw new HostsTomlError('ERR_HOSTS_TOML_INVALID', `hosts.toml is not valid TOML${where}`, { cause: err })
  }
  const { server, host, ...topLevel } = doc
  if (server !== undefined && typeof server !== 'string') throw new HostsTomlError('ERR_HOSTS_TOML_INVALID', 'hosts.toml: `server` must be a string')
  if (host !== undefined && !isTable(host)) throw new HostsTomlError('ERR_HOSTS_TOML_INVALID', 'hosts.toml: `host` must be a table of tables')
  const hosts: Array<readonly [string, TomlTable]> = []
  for (const [url, table] of Object.entries(host ?? {})) {
    if (!isTable(table)) throw new HostsTomlError('ERR_HOSTS_TOML_INVALID', `hosts.toml: host ${JSON.stringify(url)} must be a table`)
    hosts.push([url, table])
  }
  return { ...(server === undefined ? {} : { server }), topLevel, hosts }
}

/**
 * Renders the hosts.toml flotilla wants: the agent as the first host, then the original's hosts (minus
 * any entry for the agent itself). The original's `server` wins over `options.server`; its other
 * top-level settings are kept. The result depends only on the inputs, so re-running is idempotent.
 */
export function renderHostsToml (options: RenderHostsTomlOptions): string {
  const mirror = normalizeMirrorUrl(options.mirrorUrl)
  const dialTimeout = options.dialTimeout ?? DEFAULT_DIAL_TIMEOUT
  if (!GO_DURATION_RE.test(dialTimeout)) throw new HostsTomlError('ERR_HOSTS_OPTION_INVALID', `dial timeout ${JSON.stringify(dialTimeout)} is not a Go duration (e.g. 200ms)`)
  const original = options.original === undefined ? undefined : parseHostsToml(options.original)
  const server = original?.server ?? options.server
  const hosts: TomlTable = { [mirror]: { capabilities: [...MIRROR_CAPABILITIES], dial_timeout: dialTimeout } }
  for (const [url, table] of original?.hosts ?? []) {
    if (!sameHost(url, mirror)) hosts[url] = table
  }
  const doc: TomlTable = {
    ...(server === undefined ? {} : { server }),
    ...original?.topLevel,
    host: hosts,
  }
  const header = [
    `${HOSTS_TOML_MARKER}: the node-local mirror first, then the original hosts.`,
    '# The original file (if any) is kept as hosts.toml.flotilla-backup; `flotilla containerd restore` puts it back.',
  ]
  return `${header.join('\n')}\n${stringify(doc)}\n`
}

export interface MirrorPosition {
  readonly isListed: boolean
  readonly isFirst: boolean
  readonly hostCount: number
}

/** Where `mirrorUrl` appears among the file's hosts; throws HostsTomlError when the file does not parse. */
export function findMirror (text: string, mirrorUrl: string): MirrorPosition {
  const mirror = normalizeMirrorUrl(mirrorUrl)
  const { hosts } = parseHostsToml(text)
  const index = hosts.findIndex(([url]) => sameHost(url, mirror))
  return { isListed: index !== -1, isFirst: index === 0, hostCount: hosts.length }
}

/** The `server` for a registry: Docker Hub's API host for docker.io, `https://<registry>` otherwise. */
export function defaultUpstreamServer (registry: string): string {
  return registry === DOCKER_HUB ? 'https://registry-1.docker.io' : `https://${registry}`
}

/** The certs.d directory name for a registry (`docker.io`, `ghcr.io`, `127.0.0.1:5000`, `_default`). */
export function hostsDirName (registry: string): string {
  if (registry === DEFAULT_HOSTS_DIR) return registry
  try {
    return normalizeRegistry(registry)
  } catch (err) {
    throw new HostsTomlError('ERR_HOSTS_OPTION_INVALID', `invalid registry ${JSON.stringify(registry)}`, { cause: err })
  }
}

/** `http(s)://host[:port][/path]` without a trailing slash; throws on anything else. */
export function normalizeMirrorUrl (input: string): string {
  let url: URL
  try {
    url = new URL(input)
  } catch (err) {
    throw new HostsTomlError('ERR_HOSTS_OPTION_INVALID', `mirror URL ${JSON.stringify(input)} is not a URL`, { cause: err })
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.username !== '' || url.password !== '' || url.search !== '' || url.hash !== '') {
    throw new HostsTomlError('ERR_HOSTS_OPTION_INVALID', `mirror URL ${JSON.stringify(input)} must be http(s)://host[:port] without credentials or query`)
  }
  return `${url.protocol}//${url.host}${url.pathname.replace(/\/+$/, '')}`
}

function sameHost (a: string, b: string): boolean {
  const norm = (s: string): string => {
    try {
      return normalizeMirrorUrl(s)
    } catch {
      return s.replace(/\/+$/, '')
    }
  }
  return norm(a) === norm(b)
}

function isTable (value: unknown): value is TomlTable {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Date)
}
