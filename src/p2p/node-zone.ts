import { readFile } from 'node:fs/promises'
import type { Readable } from 'node:stream'
import type { Logger } from 'pino'
import { Agent, request } from 'undici'
import { readLimited } from '../http/read-limited.js'
import { P2pError } from './errors.js'

export const ZONE_LABEL = 'topology.kubernetes.io/zone'
/** Still set by older clusters and some cloud providers; read when the current label is absent. */
export const DEPRECATED_ZONE_LABEL = 'failure-domain.beta.kubernetes.io/zone'

const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount'

export interface NodeZoneOptions {
  /** The node this agent runs on (the DaemonSet passes `spec.nodeName` as `NODE_NAME`). */
  readonly nodeName: string
  /** Base URL of the API server; default `https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT`. */
  readonly apiUrl?: string
  readonly tokenFile?: string
  /** CA bundle the API server's certificate is checked against. */
  readonly caFile?: string
  /** Bound on the whole lookup: files, connection, answer. */
  readonly timeoutMs?: number
  readonly signal?: AbortSignal
}

const DEFAULTS = {
  tokenFile: `${SERVICE_ACCOUNT_DIR}/token`,
  caFile: `${SERVICE_ACCOUNT_DIR}/ca.crt`,
  timeoutMs: 5000,
} as const

/** A Node object holds the images on the node in its status: it can be large, but not this large. */
const MAX_NODE_BYTES = 8 * 1024 * 1024
const MAX_ERROR_BODY_BYTES = 64 * 1024
const MAX_DETAIL_CHARS = 200

const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/
const LABEL_VALUE = /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/

/**
 * Where this agent would read its node's zone from, or undefined when it does not run in a Kubernetes
 * cluster (no `KUBERNETES_SERVICE_HOST`) or does not know its node (no `NODE_NAME`).
 */
export function inClusterNodeZoneOptions (env: NodeJS.ProcessEnv): (NodeZoneOptions & { readonly apiUrl: string }) | undefined {
  const apiUrl = inClusterApiUrl(env)
  const nodeName = env.NODE_NAME
  if (apiUrl === undefined || nodeName === undefined || nodeName === '') return undefined
  return { nodeName, apiUrl }
}

function inClusterApiUrl (env: NodeJS.ProcessEnv): string | undefined {
  const host = env.KUBERNETES_SERVICE_HOST
  if (host === undefined || host === '') return undefined
  const port = env.KUBERNETES_SERVICE_PORT === undefined || env.KUBERNETES_SERVICE_PORT === '' ? '443' : env.KUBERNETES_SERVICE_PORT
  return `https://${host.includes(':') && !host.startsWith('[') ? `[${host}]` : host}:${port}`
}

/**
 * Reads the zone of a node from its `topology.kubernetes.io/zone` label (or the deprecated
 * `failure-domain.beta.kubernetes.io/zone`) with the pod's service account; undefined when the node has
 * neither. Failures are a P2pError with a one-line message; an abort by `signal` throws its reason.
 */
export async function readNodeZone (options: NodeZoneOptions): Promise<string | undefined> {
  const o = validateOptions(options)
  const { nodeName } = o
  if (nodeName.length > 253 || !DNS1123_SUBDOMAIN.test(nodeName)) {
    throw new P2pError('ERR_NODE_ZONE_INVALID', `node name ${JSON.stringify(oneLine(nodeName))} is not a valid Kubernetes node name (RFC 1123 subdomain)`)
  }
  const timeout = AbortSignal.timeout(o.timeoutMs)
  const signal = o.signal === undefined ? timeout : AbortSignal.any([o.signal, timeout])
  const [token, ca] = await Promise.all([
    readSecret(o.tokenFile, 'service account token'),
    readSecret(o.caFile, 'cluster CA'),
  ])
  if (token === '') throw new P2pError('ERR_NODE_ZONE', `service account token ${o.tokenFile} is empty`)
  const agent = new Agent({ connect: { ca, timeout: o.timeoutMs }, connections: 1 })
  const url = `${o.apiUrl}/api/v1/nodes/${nodeName}`
  try {
    const node = await getJson(agent, url, token, nodeName, signal)
    return zoneOf(node, nodeName)
  } catch (err) {
    if (err instanceof P2pError) throw err
    if (o.signal?.aborted === true) throw o.signal.reason
    if (timeout.aborted) throw new P2pError('ERR_NODE_ZONE', `reading node ${nodeName} from the Kubernetes API at ${o.apiUrl} timed out after ${o.timeoutMs} ms`, { cause: err })
    throw new P2pError('ERR_NODE_ZONE', `cannot reach the Kubernetes API at ${o.apiUrl}: ${describe(err)}`, { cause: err })
  } finally {
    await agent.close()
  }
}

/**
 * The zone this agent learns from its node when none was configured: undefined outside a cluster, on a
 * node without a zone label, or when the lookup fails (logged as a warning; the agent runs without a zone).
 */
export async function zoneFromNodeLabel (env: NodeJS.ProcessEnv, logger: Logger, options: Partial<NodeZoneOptions> = {}): Promise<string | undefined> {
  const inCluster = inClusterNodeZoneOptions(env)
  if (inCluster === undefined) return undefined
  const node = inCluster.nodeName
  try {
    const zone = await readNodeZone({ ...inCluster, ...options })
    if (zone === undefined) logger.info({ node }, 'the node has no zone label; p2p runs without a zone')
    else logger.info({ zone, node }, 'p2p zone from the node label')
    return zone
  } catch (err) {
    const code = err instanceof P2pError ? err.code : undefined
    logger.warn({ node, code }, `p2p zone not read from the node label, going on without a zone: ${err instanceof P2pError ? err.message : describe(err)}`)
    return undefined
  }
}

function validateOptions (options: NodeZoneOptions): Required<Omit<NodeZoneOptions, 'signal'>> & Pick<NodeZoneOptions, 'signal'> {
  const timeoutMs = options.timeoutMs ?? DEFAULTS.timeoutMs
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) throw new TypeError(`readNodeZone: timeoutMs must be a positive number, got ${timeoutMs}`)
  const apiUrl = (options.apiUrl ?? inClusterApiUrl(process.env))?.replace(/\/+$/, '')
  if (apiUrl === undefined) throw new TypeError('readNodeZone: apiUrl is required outside a Kubernetes pod (KUBERNETES_SERVICE_HOST is not set)')
  let parsed: URL
  try {
    parsed = new URL(apiUrl)
  } catch {
    throw new TypeError(`readNodeZone: apiUrl must be an http(s) URL, got ${JSON.stringify(apiUrl)}`)
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') throw new TypeError(`readNodeZone: apiUrl must be an http(s) URL, got ${JSON.stringify(apiUrl)}`)
  return {
    nodeName: options.nodeName,
    apiUrl,
    tokenFile: options.tokenFile ?? DEFAULTS.tokenFile,
    caFile: options.caFile ?? DEFAULTS.caFile,
    timeoutMs,
    signal: options.signal,
  }
}

async function readSecret (file: string, what: string): Promise<string> {
  try {
    return (await readFile(file, 'utf8')).trim()
  } catch (err) {
    throw new P2pError('ERR_NODE_ZONE', `cannot read the ${what} ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err })
  }
}

async function getJson (agent: Agent, url: string, token: string, nodeName: string, signal: AbortSignal): Promise<unknown> {
  const res = await request(url, {
    dispatcher: agent, method: 'GET', signal,
    // Only the metadata is needed; servers that cannot answer with it send the whole Node.
    headers: { authorization: `Bearer ${token}`, accept: 'application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1, application/json' },
  })
  if (res.statusCode !== 200) {
    const text = await readLimited(res.body as unknown as Readable, MAX_ERROR_BODY_BYTES)
    const status = text === undefined ? undefined : statusMessage(text.toString('utf8'))
    const hint = res.statusCode === 403 ? ' (the service account needs RBAC get on nodes)' : res.statusCode === 401 ? ' (the service account token was not accepted)' : ''
    throw new P2pError('ERR_NODE_ZONE', `reading node ${nodeName} from the Kubernetes API failed with HTTP status ${res.statusCode}${status === undefined ? '' : `: ${status}`}${hint}`)
  }
  // readLimited reads the body to its end, or destroys it through its iterator when it is too large.
  const bytes = await readLimited(res.body as unknown as Readable, MAX_NODE_BYTES)
  if (bytes === undefined) throw new P2pError('ERR_NODE_ZONE', `node ${nodeName} from the Kubernetes API is larger than ${MAX_NODE_BYTES} bytes`)
  try {
    return JSON.parse(bytes.toString('utf8'))
  } catch (err) {
    throw new P2pError('ERR_NODE_ZONE', `node ${nodeName} from the Kubernetes API is not valid JSON: ${describe(err)}`, { cause: err })
  }
}

/** The `message` of a Kubernetes Status object, if the body is one. */
function statusMessage (text: string): string | undefined {
  try {
    const status: unknown = JSON.parse(text)
    if (isRecord(status) && typeof status.message === 'string' && status.message !== '') return oneLine(status.message)
  } catch {
    // Not JSON: the status code alone says what happened.
  }
  return undefined
}

function zoneOf (node: unknown, nodeName: string): string | undefined {
  if (!isRecord(node) || !isRecord(node.metadata)) throw new P2pError('ERR_NODE_ZONE', `the Kubernetes API answered for node ${nodeName} with something that is not a Node object`)
  const labels = node.metadata.labels
  if (labels === undefined || labels === null) return undefined
  if (!isRecord(labels)) throw new P2pError('ERR_NODE_ZONE', `the labels of node ${nodeName} are not an object`)
  for (const label of [ZONE_LABEL, DEPRECATED_ZONE_LABEL]) {
    const value = labels[label]
    // An empty value is a valid label value but names no zone.
    if (value === undefined || value === '') continue
    if (typeof value !== 'string' || value.length > 63 || !LABEL_VALUE.test(value)) {
      throw new P2pError('ERR_NODE_ZONE_INVALID', `label ${label} of node ${nodeName} is not a valid label value: ${oneLine(JSON.stringify(value) ?? String(value))}`)
    }
    return value
  }
  return undefined
}

function isRecord (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function describe (err: unknown): string {
  if (!(err instanceof Error)) return oneLine(String(err))
  const code = (err as NodeJS.ErrnoException).code
  return oneLine(code === undefined || err.message.includes(code) ? err.message : `${code}: ${err.message}`)
}

/** Text from elsewhere, made fit for a one-line log message. */
function oneLine (text: string): string {
  // eslint-disable-next-line no-control-regex
  const flat = text.replace(/[\u0000-\u001f\u007f]+/g, ' ').trim()
  return flat.length > MAX_DETAIL_CHARS ? `${flat.slice(0, MAX_DETAIL_CHARS)}…` : flat
}
