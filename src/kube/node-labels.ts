import { readFile } from 'node:fs/promises'
import type { Readable } from 'node:stream'
import { Agent, request } from 'undici'
import { readLimited } from '../http/read-limited.js'
import { KubeError } from './kube-error.js'
import { isDnsSubdomain } from './labels.js'
import { describeError, oneLine } from '../errors/one-line.js'

const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount'

export interface NodeApiOptions {
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

/**
 * Where this agent would read its node from, or undefined when it does not run in a Kubernetes cluster
 * (no `KUBERNETES_SERVICE_HOST`) or does not know its node (no `NODE_NAME`).
 */
export function inClusterNodeOptions (env: NodeJS.ProcessEnv): (NodeApiOptions & { readonly apiUrl: string }) | undefined {
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
 * Reads every label of a node with the pod's service account (`get` on nodes); `{}` when it has none.
 * Each call reads the token and CA files again, so rotated tokens are picked up by callers that re-read
 * periodically. Failures are a KubeError with a one-line message (ERR_KUBE_INVALID for a bad node name or
 * a label value that is not a string, ERR_KUBE_API otherwise); an abort by `signal` throws its reason;
 * bad options are a TypeError.
 */
export async function readNodeLabels (options: NodeApiOptions): Promise<Record<string, string>> {
  const o = validateOptions(options)
  const { nodeName } = o
  if (!isDnsSubdomain(nodeName)) {
    throw new KubeError('ERR_KUBE_INVALID', `node name ${JSON.stringify(oneLine(nodeName))} is not a valid Kubernetes node name (RFC 1123 subdomain)`)
  }
  const timeout = AbortSignal.timeout(o.timeoutMs)
  const signal = o.signal === undefined ? timeout : AbortSignal.any([o.signal, timeout])
  const [token, ca] = await Promise.all([
    readSecret(o.tokenFile, 'service account token'),
    readSecret(o.caFile, 'cluster CA'),
  ])
  if (token === '') throw new KubeError('ERR_KUBE_API', `service account token ${o.tokenFile} is empty`)
  const agent = new Agent({ connect: { ca, timeout: o.timeoutMs }, connections: 1 })
  const url = `${o.apiUrl}/api/v1/nodes/${nodeName}`
  try {
    const node = await getJson(agent, url, token, nodeName, signal)
    return labelsOf(node, nodeName)
  } catch (err) {
    if (err instanceof KubeError) throw err
    if (o.signal?.aborted === true) throw o.signal.reason
    if (timeout.aborted) throw new KubeError('ERR_KUBE_API', `reading node ${nodeName} from the Kubernetes API at ${o.apiUrl} timed out after ${o.timeoutMs} ms`, { cause: err })
    throw new KubeError('ERR_KUBE_API', `cannot reach the Kubernetes API at ${o.apiUrl}: ${describeError(err)}`, { cause: err })
  } finally {
    await agent.close()
  }
}

function validateOptions (options: NodeApiOptions): Required<Omit<NodeApiOptions, 'signal'>> & Pick<NodeApiOptions, 'signal'> {
  const timeoutMs = options.timeoutMs ?? DEFAULTS.timeoutMs
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) throw new TypeError(`readNodeLabels: timeoutMs must be a positive number, got ${timeoutMs}`)
  const apiUrl = (options.apiUrl ?? inClusterApiUrl(process.env))?.replace(/\/+$/, '')
  if (apiUrl === undefined) throw new TypeError('readNodeLabels: apiUrl is required outside a Kubernetes pod (KUBERNETES_SERVICE_HOST is not set)')
  let parsed: URL
  try {
    parsed = new URL(apiUrl)
  } catch {
    throw new TypeError(`readNodeLabels: apiUrl must be an http(s) URL, got ${JSON.stringify(apiUrl)}`)
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') throw new TypeError(`readNodeLabels: apiUrl must be an http(s) URL, got ${JSON.stringify(apiUrl)}`)
  if (typeof options.nodeName !== 'string') throw new TypeError('readNodeLabels: nodeName must be a string')
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
    throw new KubeError('ERR_KUBE_API', `cannot read the ${what} ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err })
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
    throw new KubeError('ERR_KUBE_API', `reading node ${nodeName} from the Kubernetes API failed with HTTP status ${res.statusCode}${status === undefined ? '' : `: ${status}`}${hint}`)
  }
  // readLimited reads the body to its end, or destroys it through its iterator when it is too large.
  const bytes = await readLimited(res.body as unknown as Readable, MAX_NODE_BYTES)
  if (bytes === undefined) throw new KubeError('ERR_KUBE_API', `node ${nodeName} from the Kubernetes API is larger than ${MAX_NODE_BYTES} bytes`)
  try {
    return JSON.parse(bytes.toString('utf8'))
  } catch (err) {
    throw new KubeError('ERR_KUBE_API', `node ${nodeName} from the Kubernetes API is not valid JSON: ${describeError(err)}`, { cause: err })
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

function labelsOf (node: unknown, nodeName: string): Record<string, string> {
  if (!isRecord(node) || !isRecord(node.metadata)) throw new KubeError('ERR_KUBE_API', `the Kubernetes API answered for node ${nodeName} with something that is not a Node object`)
  const raw = node.metadata.labels
  if (raw === undefined || raw === null) return {}
  if (!isRecord(raw)) throw new KubeError('ERR_KUBE_API', `the labels of node ${nodeName} are not an object`)
  const entries = Object.entries(raw)
  for (const [key, value] of entries) {
    // The API server only stores strings; anything else is not from a Kubernetes API server.
    if (typeof value !== 'string') throw new KubeError('ERR_KUBE_INVALID', `label ${oneLine(key)} of node ${nodeName} is not a valid label value: ${oneLine(JSON.stringify(value) ?? String(value))}`)
  }
  // fromEntries defines own properties, so even a `__proto__` key stays a plain label.
  return Object.fromEntries(entries) as Record<string, string>
}

function isRecord (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}
