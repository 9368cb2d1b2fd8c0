// readNodeLabels against a local HTTPS server standing in for the Kubernetes API server.
import assert from 'node:assert/strict'
import { readFile, writeFile } from 'node:fs/promises'
import type { IncomingHttpHeaders, ServerResponse } from 'node:http'
import { createServer, type Server } from 'node:https'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { KubeError, type KubeErrorCode } from '../../../src/kube/kube-error.js'
import { inClusterNodeOptions, readNodeLabels, type NodeApiOptions } from '../../../src/kube/node-labels.js'
import { runCommand } from '../../helpers/run-command.js'
import { makeTempDir, type TempDir } from '../../helpers/temp-dir.js'

const TOKEN = 'test-service-account-token'
const ROTATED = 'rotated-service-account-token'
const BOUND = { timeout: 15_000 }
const LABELS = {
  'kubernetes.io/hostname': 'node-a',
  'topology.kubernetes.io/zone': 'eu-west-1a',
  'flotilla.dev/precache': 'web',
  'node-role.kubernetes.io/worker': '',
}

/** What the fake API server answers for each node name. */
const NODES: Record<string, (res: ServerResponse) => void> = {
  'node-a': json(200, node(LABELS)),
  'node-nolabels': json(200, { kind: 'Node', apiVersion: 'v1', metadata: { name: 'node-nolabels' } }),
  'node-null-labels': json(200, { kind: 'Node', apiVersion: 'v1', metadata: { name: 'n', labels: null } }),
  'node-metadata-only': json(200, { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: { name: 'n', labels: { a: 'b' } } }),
  'node-number': json(200, node({ 'kubernetes.io/hostname': 'n', 'example.com/count': 7 })),
  'node-array-labels': json(200, { kind: 'Node', metadata: { name: 'n', labels: ['a=b'] } }),
  'node-no-metadata': json(200, { kind: 'Status', status: 'Success' }),
  'node-forbidden': json(403, status(403, 'Forbidden', 'nodes "node-forbidden" is forbidden: User "system:serviceaccount:kube-system:flotilla" cannot get resource "nodes" in API group "" at the cluster scope')),
  'node-notjson': (res) => { res.writeHead(200, { 'content-type': 'application/json' }).end('{"kind":"Node",') },
  'node-huge': (res) => {
    // 9 MiB of status: over the 8 MiB bound, sent as fast as the client reads.
    res.writeHead(200, { 'content-type': 'application/json' })
    res.write('{"kind":"Node","metadata":{"name":"n"},"status":{"pad":"')
    const chunk = 'x'.repeat(1024 * 1024)
    for (let i = 0; i < 9; i++) res.write(chunk)
    res.end('"}}')
  },
  'node-silent': () => { /* never answers */ },
}

let dir: TempDir
let server: Server
let apiUrl: string
let tokenFile: string
let caFile: string
const requests: Array<{ url: string, headers: IncomingHttpHeaders }> = []

before(async () => {
  dir = await makeTempDir('node-labels')
  const made = await runCommand('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
    '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1',
    '-keyout', join(dir.path, 'api.key'), '-out', join(dir.path, 'api.crt')], { timeoutMs: 30_000 })
  assert.equal(made.code, 0, made.stderr)
  caFile = join(dir.path, 'api.crt')
  tokenFile = join(dir.path, 'token')
  await writeFile(tokenFile, TOKEN)
  server = createServer({ cert: await readFile(caFile), key: await readFile(join(dir.path, 'api.key')) }, (req, res) => {
    requests.push({ url: req.url ?? '', headers: req.headers })
    const name = /^\/api\/v1\/nodes\/([^/?]+)$/.exec(req.url ?? '')?.[1]
    if (req.method !== 'GET' || name === undefined) return json(400, status(400, 'BadRequest', `unexpected ${req.method ?? ''} ${req.url ?? ''}`))(res)
    if (req.headers.authorization !== `Bearer ${TOKEN}` && req.headers.authorization !== `Bearer ${ROTATED}`) return json(401, status(401, 'Unauthorized', 'Unauthorized'))(res)
    const answer = NODES[name] ?? json(404, status(404, 'NotFound', `nodes "${name}" not found`))
    answer(res)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  apiUrl = `https://127.0.0.1:${(server.address() as AddressInfo).port}`
})

after(async () => {
  server.closeAllConnections()
  await new Promise<void>((resolve) => server.close(() => resolve()))
  await dir.cleanup()
})

function options (nodeName: string, extra: Partial<NodeApiOptions> = {}): NodeApiOptions {
  return { nodeName, apiUrl, tokenFile, caFile, timeoutMs: 5000, ...extra }
}

async function rejectsWith (promise: Promise<unknown>, code: KubeErrorCode, message: RegExp): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof KubeError, `expected a KubeError, got ${String(err)}`)
    assert.equal(err.code, code, err.message)
    assert.match(err.message, message)
    assert.doesNotMatch(err.message, /\n/)
    return true
  })
}

void test('reads every label of the node, empty values included, asking for the metadata only', BOUND, async () => {
  const sent = requests.length
  assert.deepEqual(await readNodeLabels(options('node-a')), LABELS)
  assert.equal(requests.length, sent + 1)
  const seen = requests.at(-1)
  assert.equal(seen?.url, '/api/v1/nodes/node-a')
  assert.equal(seen?.headers.authorization, `Bearer ${TOKEN}`)
  assert.match(String(seen?.headers.accept), /^application\/json;as=PartialObjectMetadata;g=meta\.k8s\.io;v=v1, application\/json$/)
  assert.deepEqual(await readNodeLabels(options('node-metadata-only')), { a: 'b' })
})

void test('a node without labels has none', BOUND, async () => {
  assert.deepEqual(await readNodeLabels(options('node-nolabels')), {})
  assert.deepEqual(await readNodeLabels(options('node-null-labels')), {})
})

void test('each read takes the token file as it is now (rotated tokens)', BOUND, async () => {
  const rotating = join(dir.path, 'rotating-token')
  await writeFile(rotating, TOKEN)
  await readNodeLabels(options('node-a', { tokenFile: rotating }))
  await writeFile(rotating, `${ROTATED}\n`)
  await readNodeLabels(options('node-a', { tokenFile: rotating }))
  assert.equal(requests.at(-1)?.headers.authorization, `Bearer ${ROTATED}`)
})

const failures: Array<[string, string, KubeErrorCode, RegExp]> = [
  ['404 carries the Status message', 'node-ghost', 'ERR_KUBE_API', /HTTP status 404: nodes "node-ghost" not found$/],
  ['403 says what permission is missing', 'node-forbidden', 'ERR_KUBE_API', /HTTP status 403: nodes "node-forbidden" is forbidden: .*\(the service account needs RBAC get on nodes\)$/],
  ['a body that is not JSON', 'node-notjson', 'ERR_KUBE_API', /node node-notjson from the Kubernetes API is not valid JSON/],
  ['a body over 8 MiB', 'node-huge', 'ERR_KUBE_API', /node node-huge from the Kubernetes API is larger than 8388608 bytes$/],
  ['an answer without metadata', 'node-no-metadata', 'ERR_KUBE_API', /answered for node node-no-metadata with something that is not a Node object$/],
  ['labels that are not an object', 'node-array-labels', 'ERR_KUBE_API', /the labels of node node-array-labels are not an object$/],
  ['a label value that is not a string', 'node-number', 'ERR_KUBE_INVALID', /label example\.com\/count of node node-number is not a valid label value: 7$/],
]
for (const [what, name, code, message] of failures) {
  void test(`fails with ${code}: ${what}`, BOUND, async () => {
    await rejectsWith(readNodeLabels(options(name)), code, message)
  })
}

void test('an invalid node name is refused before any request', BOUND, async () => {
  const sent = requests.length
  for (const name of ['', 'Node-A', 'node_a', 'a/../../api', 'node%2Fa', `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(62)}`]) {
    await rejectsWith(readNodeLabels(options(name)), 'ERR_KUBE_INVALID', /is not a valid Kubernetes node name/)
  }
  assert.equal(requests.length, sent)
})

void test('a wrong token is reported as 401; unreadable or empty files name the file', BOUND, async () => {
  const wrong = join(dir.path, 'wrong-token')
  await writeFile(wrong, 'not-the-token')
  await rejectsWith(readNodeLabels(options('node-a', { tokenFile: wrong })), 'ERR_KUBE_API', /HTTP status 401: Unauthorized \(the service account token was not accepted\)$/)
  const missing = join(dir.path, 'missing')
  await rejectsWith(readNodeLabels(options('node-a', { caFile: missing })), 'ERR_KUBE_API', /cannot read the cluster CA .*missing: ENOENT/)
  const empty = join(dir.path, 'empty-token')
  await writeFile(empty, '\n')
  await rejectsWith(readNodeLabels(options('node-a', { tokenFile: empty })), 'ERR_KUBE_API', /service account token .* is empty/)
})

void test('a server that never answers is a timeout error within the bound; an abort throws its reason', BOUND, async () => {
  const started = Date.now()
  await rejectsWith(readNodeLabels(options('node-silent', { timeoutMs: 300 })), 'ERR_KUBE_API', /timed out after 300 ms/)
  const elapsed = Date.now() - started
  assert.ok(elapsed >= 250 && elapsed < 2000, `took ${elapsed} ms`)
  const reason = new Error('stopping')
  const controller = new AbortController()
  setTimeout(() => controller.abort(reason), 100)
  await assert.rejects(readNodeLabels(options('node-silent', { signal: controller.signal })), (err: unknown) => err === reason)
})

void test('bad options are a TypeError', BOUND, async () => {
  await assert.rejects(readNodeLabels(options('node-a', { timeoutMs: 0 })), TypeError)
  await assert.rejects(readNodeLabels(options('node-a', { apiUrl: 'ftp://127.0.0.1' })), TypeError)
  await assert.rejects(readNodeLabels(options('node-a', { apiUrl: 'not a url' })), TypeError)
})

void test('inClusterNodeOptions: only in a cluster and with a node name', () => {
  assert.equal(inClusterNodeOptions({}), undefined)
  assert.equal(inClusterNodeOptions({ NODE_NAME: 'node-a' }), undefined)
  assert.equal(inClusterNodeOptions({ KUBERNETES_SERVICE_HOST: '10.96.0.1', NODE_NAME: '' }), undefined)
  assert.deepEqual(inClusterNodeOptions({ KUBERNETES_SERVICE_HOST: '10.96.0.1', NODE_NAME: 'node-a' }), { nodeName: 'node-a', apiUrl: 'https://10.96.0.1:443' })
  assert.deepEqual(inClusterNodeOptions({ KUBERNETES_SERVICE_HOST: 'fd00:10:96::1', KUBERNETES_SERVICE_PORT: '6443', NODE_NAME: 'node-a' }),
    { nodeName: 'node-a', apiUrl: 'https://[fd00:10:96::1]:6443' })
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
