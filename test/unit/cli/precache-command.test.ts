// `flotilla precache status` run as the user runs it: a child process asking a local HTTP server that plays
// the agent (a good status, pre-cache not configured, garbage, a wrong shape, silence) or no server at all.
import assert from 'node:assert/strict'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, before, beforeEach, describe, test } from 'node:test'
import type { PrecacheStatus } from '../../../src/precache/precache-status.js'
import { flotillaCommand } from '../../helpers/flotilla-agent.js'
import { freePort } from '../../helpers/free-port.js'
import { runCommand, type CommandResult } from '../../helpers/run-command.js'

const DIGEST = `sha256:3f4a5b6c7d8e${'0'.repeat(52)}`

const GOOD: PrecacheStatus = {
  file: '/etc/flotilla/precache/sets.yaml',
  fileError: null,
  loadedAt: new Date(Date.now() - 120_000).toISOString(),
  mode: 'containerd',
  nodeLabels: { tier: 'edge' },
  nodeLabelsError: null,
  pin: { honoured: true, containerdVersion: '1.7.13', note: null },
  sets: [
    {
      name: 'web',
      matches: true,
      refreshSeconds: 600,
      images: [
        { ref: 'registry.example.com/team/web:v1.4', digest: DIGEST, phase: 'Ready', pinned: true, lastConfirmed: new Date().toISOString(), bytes: 12_345_678, error: null },
        { ref: 'registry.example.com/team/bad:', digest: null, phase: 'Failed', pinned: false, lastConfirmed: null, bytes: null, error: 'invalid reference format' },
      ],
    },
    { name: 'gpu', matches: false, refreshSeconds: 600, images: [] },
  ],
}

type Handler = (req: IncomingMessage, res: ServerResponse) => void

function json (status: number, doc: unknown): Handler {
  return (_req, res) => {
    res.writeHead(status, { 'content-type': 'application/json' })
    res.end(JSON.stringify(doc))
  }
}

async function flotilla (args: string[], env: Record<string, string> = {}): Promise<CommandResult> {
  const [cmd, argv] = flotillaCommand(args)
  const base: NodeJS.ProcessEnv = { ...process.env, FLOTILLA_CONFIG: '' }
  delete base.FLOTILLA_AGENT
  return await runCommand(cmd, argv, { timeoutMs: 30_000, env: { ...base, ...env } })
}

/** A user error: exactly one `flotilla: …` line on stderr, nothing on stdout, exit 1. */
function assertOneLineFailure (r: CommandResult, pattern: RegExp): void {
  assert.equal(r.code, 1, r.stderr)
  assert.equal(r.stdout, '')
  const lines = r.stderr.split('\n').filter((l) => l !== '')
  assert.equal(lines.length, 1, r.stderr)
  assert.match(lines[0] ?? '', /^flotilla: /)
  assert.match(lines[0] ?? '', pattern)
}

void describe('flotilla precache status (CLI)', () => {
  let server: Server
  let agent: string
  let handler: Handler
  const requests: string[] = []

  before(async () => {
    server = createServer((req, res) => {
      requests.push(`${req.method ?? ''} ${req.url ?? ''}`)
      handler(req, res)
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    agent = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  })
  after(async () => {
    server.closeAllConnections()
    await new Promise<void>((resolve) => server.close(() => { resolve() }))
  })
  beforeEach(() => { requests.length = 0 })

  void test('a good status: the header and one row per image, exit 0 even with a Failed image', async () => {
    handler = json(200, GOOD)
    const r = await flotilla(['precache', 'status', '--agent', agent])
    assert.equal(r.code, 0, r.stderr)
    assert.equal(r.stderr, '')
    assert.deepEqual(requests, ['GET /status/precache'])
    const lines = r.stdout.split('\n')
    assert.ok(lines.includes('file:        /etc/flotilla/precache/sets.yaml (loaded 2m ago)'), r.stdout)
    assert.ok(lines.includes('pin:         honoured by containerd 1.7.13'), r.stdout)
    assert.ok(lines.includes('node labels: tier=edge'), r.stdout)
    assert.match(r.stdout, /^SET +IMAGE +PHASE +PINNED +DIGEST +CONFIRMED +SIZE +ERROR$/m)
    assert.match(r.stdout, /^web +registry\.example\.com\/team\/web:v1\.4 +Ready +yes +3f4a5b6c7d8e +(just now|\ds ago) +12\.3 MB +-$/m)
    assert.match(r.stdout, /^web +registry\.example\.com\/team\/bad: +Failed +no +- +- +- +invalid reference format$/m)
    assert.match(r.stdout, /^gpu +\(not on this node\)$/m)
  })

  void test('FLOTILLA_AGENT names the agent when --agent is not given; a trailing slash is fine', async () => {
    handler = json(200, GOOD)
    const r = await flotilla(['precache', 'status'], { FLOTILLA_AGENT: `${agent}/` })
    assert.equal(r.code, 0, r.stderr)
    assert.deepEqual(requests, ['GET /status/precache'])
  })

  void test('--json prints what the agent answered, keys this CLI does not know included', async () => {
    const doc = { ...GOOD, addedByANewerAgent: { x: 1 } }
    handler = json(200, doc)
    const r = await flotilla(['precache', 'status', '--agent', agent, '--json'])
    assert.equal(r.code, 0, r.stderr)
    assert.deepEqual(JSON.parse(r.stdout), doc)
    assert.ok(r.stdout.startsWith('{\n  "file": '), 'pretty-printed')
  })

  void test('pre-cache not configured (404 with an OCI error): its message on one line, exit 1', async () => {
    handler = json(404, { errors: [{ code: 'NAME_UNKNOWN', message: 'pre-cache is not configured on this agent' }] })
    const r = await flotilla(['precache', 'status', '--agent', agent])
    assertOneLineFailure(r, /HTTP 404: pre-cache is not configured on this agent/)
  })

  void test('a 404 without an OCI body (not flotilla, or an older agent) says so', async () => {
    handler = (_req, res) => { res.writeHead(404); res.end('404 page not found') }
    const r = await flotilla(['precache', 'status', '--agent', agent])
    assertOneLineFailure(r, /HTTP 404 \(an agent without pre-cache status, or not flotilla\?\)$/)
  })

  void test('garbage instead of JSON: exit 1, one line', async () => {
    handler = (_req, res) => { res.writeHead(200, { 'content-type': 'text/html' }); res.end('<html>\n<body>hello</body></html>') }
    const r = await flotilla(['precache', 'status', '--agent', agent])
    assertOneLineFailure(r, /answered with something that is not JSON .*it starts "<html> <body>hello/)
  })

  void test('JSON of another shape: the first wrong field named', async () => {
    const wrong = { ...GOOD, sets: [{ ...GOOD.sets[0], images: [{ ...GOOD.sets[0]?.images[0], phase: 'Done' }] }] }
    handler = json(200, wrong)
    const r = await flotilla(['precache', 'status', '--agent', agent])
    assertOneLineFailure(r, /is not a pre-cache status .*: sets\[0\]\.images\[0\]\.phase: /)
  })

  void test('an answer larger than 4 MiB is refused', async () => {
    handler = (_req, res) => { res.writeHead(200, { 'content-type': 'application/json' }); res.end(`"${'x'.repeat(5 * 1024 * 1024)}"`) }
    const r = await flotilla(['precache', 'status', '--agent', agent])
    assertOneLineFailure(r, /answered with more than 4 MiB$/)
  })

  void test('an agent that never answers: given up after 5 s', async () => {
    handler = () => { /* never answers */ }
    const started = Date.now()
    const r = await flotilla(['precache', 'status', '--agent', agent])
    assertOneLineFailure(r, /did not answer within 5 s$/)
    assert.ok(Date.now() - started < 15_000)
  })

  void test('no agent at all (a closed port): cannot reach it, exit 1', async () => {
    const closed = `http://127.0.0.1:${await freePort()}`
    const r = await flotilla(['precache', 'status', '--agent', closed])
    assertOneLineFailure(r, new RegExp(`cannot reach the agent at ${closed.replaceAll('.', '\\.')}: connect ECONNREFUSED`))
  })

  void test('an --agent that is not an http(s) URL is refused before any request', async () => {
    const r = await flotilla(['precache', 'status', '--agent', '127.0.0.1:5000'])
    assertOneLineFailure(r, /--agent "127\.0\.0\.1:5000": expected the agent's http\(s\) URL/)
    assert.deepEqual(requests, [])
  })
})
