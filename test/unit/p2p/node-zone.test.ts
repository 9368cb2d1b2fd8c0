import assert from 'node:assert/strict'
import { readFile, writeFile } from 'node:fs/promises'
import type { IncomingHttpHeaders, ServerResponse } from 'node:http'
import { createServer, type Server } from 'node:https'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { pino } from 'pino'
import { P2pError, type P2pErrorCode } from '../../../src/p2p/errors.js'
import { inClusterNodeZoneOptions, readNodeZone, zoneFromNodeLabel, type NodeZoneOptions } from '../../../src/p2p/node-zone.js'
import { runCommand } from '../../helpers/run-command.js'
import { makeTempDir, type TempDir } from '../../helpers/temp-dir.js'

const TOKEN = 'test-service-account-token'
const BOUND = { timeout: 15_000 }

/** What the fake API server answers for each node name. */
const NODES: Record<string, (res: ServerResponse) => void> = {
  'node-a': json(200, node({ 'topology.kubernetes.io/zone': 'eu-west-1a', 'kubernetes.io/hostname': 'node-a' })),
  'node-old': json(200, node({ 'failure-domain.beta.kubernetes.io/zone': 'us-east-1c' })),
  'node-both': json(200, node({ 'topology.kubernetes.io/zone': 'zone-new', 'failure-domain.beta.kubernetes.io/zone': 'zone-old' })),
  'node-bare': json(200, node({ 'kubernetes.io/hostname': 'node-bare' })),
  'node-nolabels': json(200, { kind: 'Node', apiVersion: 'v1', metadata: { name: 'node-nolabels' } }),
  'node-empty-zone': json(200, node({ 'topology.kubernetes.io/zone': '', 'failure-domain.beta.kubernetes.io/zone': 'zone-old' })),
  'node-spaces': json(200, node({ 'topology.kubernetes.io/zone': 'eu west' })),
  'node-dash': json(200, node({ 'topology.kubernetes.io/zone': '-eu-west-1a' })),
  'node-long': json(200, node({ 'topology.kubernetes.io/zone': 'a'.repeat(64) })),
  'node-number': json(200, node({ 'topology.kubernetes.io/zone': 7 })),
  'node-forbidden': json(403, status(403, 'Forbidden', 'nodes "node-forbidden" is forbidden: User "system:serviceaccount:kube-system:flotilla" cannot get resource "nodes" in API group "" at the cluster scope')),
  'node-notjson': (res) => { res.writeHead(200, { 'content-type': 'application/json' }).end('{"kind":"Node",') },
  'node-html-error': (res) => { res.writeHead(502, { 'content-type': 'text/html' }).end('<html>bad gateway</html>') },
  'node-silent': () => { /* never answers */ },
}

let dir: TempDir
let server: Server
let apiUrl: string
let tokenFile: string
let caFile: string
let otherCaFile: string
const requests: Array<{ url: string, headers: IncomingHttpHeaders }> = []

before(async () => {
  dir = await makeTempDir('node-zone')
  await makeCert('api')
  await makeCert('other')
  caFile = join(dir.path, 'api.crt')
  otherCaFile = join(dir.path, 'other.crt')
  tokenFile = join(dir.path, 'token')
  // Projected tokens end without a newline, hand-made ones often with: both must work.
  await writeFile(tokenFile, `${TOKEN}\n`)
  server = createServer({ cert: await readFile(caFile), key: await readFile(join(dir.path, 'api.key')) }, (req, res) => {
    requests.push({ url: req.url ?? '', headers: req.headers })
    const name = /^\/api\/v1\/nodes\/([^/?]+)$/.exec(req.url ?? '')?.[1]
    if (req.method !== 'GET' || name === undefined) return json(400, status(400, 'BadRequest', `unexpected ${req.method ?? ''} ${req.url ?? ''}`))(res)
    if (req.headers.authorization !== `Bearer ${TOKEN}`) return json(401, status(401, 'Unauthorized', 'Unauthorized'))(res)
    const answer = NODES[name] ?? json(404, status(404, 'NotFound', `nodes "${name}" not found`))
    answer(res)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  apiUrl = `https://127.0.0.1:${(server.address() as AddressInfo).port}`
})

after(async () => {
  // The silent node leaves a request hanging on purpose: do not wait for it.
  server.closeAllConnections()
  await new Promise<void>((resolve) => server.close(() => resolve()))
  await dir.cleanup()
})

function options (nodeName: string, extra: Partial<NodeZoneOptions> = {}): NodeZoneOptions {
  return { nodeName, apiUrl, tokenFile, caFile, timeoutMs: 5000, ...extra }
}

async function rejectsWith (promise: Promise<unknown>, code: P2pErrorCode, message: RegExp): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof P2pError, `expected a P2pError, got ${String(err)}`)
    assert.equal(err.code, code, err.message)
    assert.match(err.message, message)
    assert.doesNotMatch(err.message, /\n/)
    return true
  })
}

void test('reads topology.kubernetes.io/zone with the service account token as Bearer', BOUND, async () => {
  const sent = requests.length
  assert.equal(await readNodeZone(options('node-a')), 'eu-west-1a')
  assert.equal(requests.length, sent + 1)
  const seen = requests.at(-1)
  assert.equal(seen?.url, '/api/v1/nodes/node-a')
  assert.equal(seen?.headers.authorization, `Bearer ${TOKEN}`)
})

void test('falls back to the deprecated failure-domain.beta.kubernetes.io/zone label', BOUND, async () => {
  assert.equal(await readNodeZone(options('node-old')), 'us-east-1c')
})

void test('the current label wins over the deprecated one; an empty one names no zone', BOUND, async () => {
  assert.equal(await readNodeZone(options('node-both')), 'zone-new')
  assert.equal(await readNodeZone(options('node-empty-zone')), 'zone-old')
})

void test('a node without a zone label has no zone', BOUND, async () => {
  assert.equal(await readNodeZone(options('node-bare')), undefined)
  assert.equal(await readNodeZone(options('node-nolabels')), undefined)
})

void test('404: the error carries the message of the Kubernetes Status', BOUND, async () => {
  await rejectsWith(readNodeZone(options('node-ghost')), 'ERR_NODE_ZONE', /HTTP status 404: nodes "node-ghost" not found$/)
})

void test('403: the error carries the Status message and says what permission is missing', BOUND, async () => {
  await rejectsWith(readNodeZone(options('node-forbidden')), 'ERR_NODE_ZONE',
    /HTTP status 403: nodes "node-forbidden" is forbidden: User "system:serviceaccount:kube-system:flotilla" cannot get .*RBAC get on nodes/)
})

void test('an error status without a JSON body gives the status alone', BOUND, async () => {
  await rejectsWith(readNodeZone(options('node-html-error')), 'ERR_NODE_ZONE', /HTTP status 502$/)
})

void test('a wrong token is refused by the server and reported as 401', BOUND, async () => {
  const wrong = join(dir.path, 'wrong-token')
  await writeFile(wrong, 'not-the-token')
  await rejectsWith(readNodeZone(options('node-a', { tokenFile: wrong })), 'ERR_NODE_ZONE', /HTTP status 401: Unauthorized \(the service account token was not accepted\)$/)
})

void test('a body that is not JSON is an error', BOUND, async () => {
  await rejectsWith(readNodeZone(options('node-notjson')), 'ERR_NODE_ZONE', /node node-notjson from the Kubernetes API is not valid JSON/)
})

void test('a zone label that is not a valid label value is an error', BOUND, async () => {
  for (const name of ['node-spaces', 'node-dash', 'node-long', 'node-number']) {
    await rejectsWith(readNodeZone(options(name)), 'ERR_NODE_ZONE_INVALID', new RegExp(`label topology\\.kubernetes\\.io/zone of node ${name} is not a valid label value: "?[-\\w ]+"?$`))
  }
})

void test('an invalid node name is refused before any request', BOUND, async () => {
  const sent = requests.length
  for (const name of ['', 'Node-A', 'node_a', '-node', 'node-', 'a/../../api', 'node a', 'node%2Fa', `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(62)}`]) {
    await rejectsWith(readNodeZone(options(name)), 'ERR_NODE_ZONE_INVALID', /is not a valid Kubernetes node name/)
  }
  assert.equal(requests.length, sent)
  // The longest valid name (253 characters) is asked for.
  await rejectsWith(readNodeZone(options(`${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(61)}`)), 'ERR_NODE_ZONE', /HTTP status 404/)
})

void test('a server that never answers is a timeout error within the bound', BOUND, async () => {
  const started = Date.now()
  await rejectsWith(readNodeZone(options('node-silent', { timeoutMs: 300 })), 'ERR_NODE_ZONE', /timed out after 300 ms/)
  const elapsed = Date.now() - started
  assert.ok(elapsed >= 250 && elapsed < 2000, `took ${elapsed} ms`)
})

void test('aborting through the signal throws its reason', BOUND, async () => {
  const reason = new Error('stopping')
  const controller = new AbortController()
  setTimeout(() => controller.abort(reason), 100)
  await assert.rejects(readNodeZone(options('node-silent', { signal: controller.signal })), (err: unknown) => err === reason)
})

void test('a server certificate not signed by the CA file is refused', BOUND, async () => {
  const sent = requests.length
  await rejectsWith(readNodeZone(options('node-a', { caFile: otherCaFile })), 'ERR_NODE_ZONE', new RegExp(`cannot reach the Kubernetes API at ${apiUrl.replaceAll('.', '\\.')}: .*(certificate|CERT)`))
  assert.equal(requests.length, sent)
})

void test('an unreadable token or CA file is an error naming the file', BOUND, async () => {
  const missing = join(dir.path, 'missing')
  await rejectsWith(readNodeZone(options('node-a', { tokenFile: missing })), 'ERR_NODE_ZONE', /cannot read the service account token .*missing: ENOENT/)
  await rejectsWith(readNodeZone(options('node-a', { caFile: missing })), 'ERR_NODE_ZONE', /cannot read the cluster CA .*missing: ENOENT/)
  const empty = join(dir.path, 'empty-token')
  await writeFile(empty, '\n')
  await rejectsWith(readNodeZone(options('node-a', { tokenFile: empty })), 'ERR_NODE_ZONE', /service account token .* is empty/)
})

void test('bad options are a TypeError', BOUND, async () => {
  await assert.rejects(readNodeZone(options('node-a', { timeoutMs: 0 })), TypeError)
  await assert.rejects(readNodeZone(options('node-a', { apiUrl: 'ftp://127.0.0.1' })), TypeError)
})

void test('inClusterNodeZoneOptions: only in a cluster and with a node name', () => {
  assert.equal(inClusterNodeZoneOptions({}), undefined)
  assert.equal(inClusterNodeZoneOptions({ NODE_NAME: 'node-a' }), undefined)
  assert.equal(inClusterNodeZoneOptions({ KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' }), undefined)
  assert.equal(inClusterNodeZoneOptions({ KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443', NODE_NAME: '' }), undefined)
  assert.deepEqual(inClusterNodeZoneOptions({ KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '6443', NODE_NAME: 'node-a' }),
    { nodeName: 'node-a', apiUrl: 'https://10.96.0.1:6443' })
  assert.deepEqual(inClusterNodeZoneOptions({ KUBERNETES_SERVICE_HOST: 'fd00:10:96::1', KUBERNETES_SERVICE_PORT: '443', NODE_NAME: 'node-a' }),
    { nodeName: 'node-a', apiUrl: 'https://[fd00:10:96::1]:443' })
})

void test('zoneFromNodeLabel: logs the zone it found, warns in one line and goes on without one on failure', BOUND, async () => {
  const lines: Array<Record<string, unknown>> = []
  const logger = pino({ level: 'info' }, { write: (line: string) => { lines.push(JSON.parse(line) as Record<string, unknown>) } })
  const env = { KUBERNETES_SERVICE_HOST: '127.0.0.1', KUBERNETES_SERVICE_PORT: new URL(apiUrl).port }
  const files = { tokenFile, caFile }
  assert.equal(await zoneFromNodeLabel({ ...env, NODE_NAME: 'node-a' }, logger, files), 'eu-west-1a')
  assert.deepEqual(pick(lines.at(-1), ['level', 'msg', 'zone', 'node']), { level: 30, msg: 'p2p zone from the node label', zone: 'eu-west-1a', node: 'node-a' })

  assert.equal(await zoneFromNodeLabel({ ...env, NODE_NAME: 'node-forbidden' }, logger, files), undefined)
  const warning = lines.at(-1)
  assert.equal(warning?.level, 40)
  assert.match(String(warning?.msg), /going on without a zone: .*HTTP status 403/)
  assert.doesNotMatch(String(warning?.msg), /\n/)

  const count = lines.length
  const sent = requests.length
  assert.equal(await zoneFromNodeLabel({ NODE_NAME: 'node-a' }, logger, files), undefined)
  assert.equal(lines.length, count)
  assert.equal(requests.length, sent)
})

function node (labels: Record<string, unknown>): unknown {
  return { kind: 'Node', apiVersion: 'v1', metadata: { name: 'n', labels }, status: { images: [{ names: ['docker.io/library/busybox:latest'], sizeBytes: 1 }] } }
}

function status (code: number, reason: string, message: string): unknown {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code }
}

function json (code: number, body: unknown): (res: ServerResponse) => void {
  return (res) => { res.writeHead(code, { 'content-type': 'application/json' }).end(JSON.stringify(body)) }
}

function pick (record: Record<string, unknown> | undefined, keys: readonly string[]): Record<string, unknown> {
  return Object.fromEntries(keys.map((k) => [k, record?.[k]]))
}

async function makeCert (name: string): Promise<void> {
  const made = await runCommand('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
    '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1',
    '-keyout', join(dir.path, `${name}.key`), '-out', join(dir.path, `${name}.crt`)], { timeoutMs: 30_000 })
  assert.equal(made.code, 0, made.stderr)
}
