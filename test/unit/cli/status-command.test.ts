// `flotilla status` and `flotilla precache status --wait` run as the user runs them (a child process against a
// local server playing the agent), the status table on its own, and the count progress off a terminal.
import assert from 'node:assert/strict'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Writable } from 'node:stream'
import { after, before, describe, test } from 'node:test'
import { countProgress } from '../../../src/cli/progress.js'
import type { PrecacheStatus } from '../../../src/precache/precache-status.js'
import { formatNodeStatus } from '../../../src/status/status-table.js'
import { flotillaCommand } from '../../helpers/flotilla-agent.js'
import { runCommand, type CommandResult } from '../../helpers/run-command.js'
import { emptyStatus, fullStatus, NOW } from '../status/node-status-fixture.js'

async function flotilla (args: string[]): Promise<CommandResult> {
  const [cmd, argv] = flotillaCommand(args)
  const env: NodeJS.ProcessEnv = { ...process.env, FLOTILLA_CONFIG: '' }
  delete env.FLOTILLA_AGENT
  return await runCommand(cmd, argv, { timeoutMs: 30_000, env })
}

void describe('formatNodeStatus', () => {
  const now = new Date(NOW)

  void test('the node on one line, then each section as a compact table', () => {
    const out = formatNodeStatus(fullStatus(), now)
    assert.match(out, /^agent 10\.0\.0\.1:5000 {2}zone eu-west-1a {2}version 0\.1\.0 {2}up 1h$/m)
    assert.match(out, /^PEERS \(1\)\n {2}ADDRESS +ZONE +LAST SEEN +ID\n {2}10\.0\.0\.2:5000 +eu-west-1b +just now +12D3KooW/m)
    assert.match(out, /^STORE {2}2\.5 GB of 10\.0 GB {2}\(linked to containerd 500\.0 MB\) {2}evictions 3 \(123\.0 MB\)$/m)
    assert.match(out, /^ {2}3f4a5b6c7d8e +docker\.io +5\.0 MB \/ 20\.0 MB \(25%\) +1\.3 MB\/s +upstream:docker\.io$/m)
    assert.match(out, /^PRE-CACHE {2}1\/2 Ready$/m)
    assert.match(out, /^ {2}web +docker\.io\/library\/redis:7 +Pulling +-$/m)
    assert.match(out, /^ {2}gpu +\(not on this node\)$/m)
    assert.match(out, /^ {2}ghcr\.io +open +https:\/\/ghcr\.io +connect ECONNREFUSED <script>alert\(1\)<\/script> \(30s ago\)$/m)
    assert.match(out, /^RECENT ERRORS \(1\)\n {2}10s ago {2}request failed/m)
    assert.match(out, /^SERVED {2}hit 9\.0 MB, peer 3\.0 MB, upstream 1\.0 MB {2}upstream bytes saved 12\.0 MB$/m)
  })

  void test('a quiet node: each section says none', () => {
    const out = formatNodeStatus(emptyStatus(), now)
    assert.match(out, /^standalone 10\.0\.0\.1:5000 {2}zone -/m)
    assert.match(out, /^PEERS \(0\)\n {2}none$/m)
    assert.match(out, /^DOWNLOADS \(0\)\n {2}none$/m)
    assert.match(out, /^PRE-CACHE {2}not configured$/m)
    assert.match(out, /^SERVED {2}nothing yet/m)
  })

  void test("control characters from the agent never reach the terminal", () => {
    const s = fullStatus()
    const out = formatNodeStatus({ ...s, recentErrors: [{ at: NOW, message: 'bad\u001b[31m red\r\nline' }] }, now)
    // eslint-disable-next-line no-control-regex
    assert.doesNotMatch(out, /[\u0000-\u0009\u000b-\u001f]/)
  })
})

void describe('countProgress off a terminal', () => {
  void test('one plain line per change, none repeated', () => {
    const lines: string[] = []
    const out = new Writable({ write (chunk: Buffer, _enc, cb) { lines.push(chunk.toString()); cb() } })
    const notTty = Object.assign(new Writable({ write (_c, _e, cb) { cb() } }), { isTTY: false }) as unknown as NodeJS.WriteStream
    const p = countProgress('pre-cache', notTty, out)
    p.update(0, 2, '2 Pending')
    p.update(0, 2, '2 Pending')
    p.update(1, 2, '1 Pulling')
    p.update(2, 2)
    p.stop()
    assert.deepEqual(lines, ['pre-cache: 0/2 (2 Pending)\n', 'pre-cache: 1/2 (1 Pulling)\n', 'pre-cache: 2/2\n'])
  })
})

void describe('flotilla status / precache status --wait (CLI)', () => {
  let server: Server
  let agent: string
  let handle: (req: IncomingMessage, res: ServerResponse) => void = () => {}
  const json = (doc: unknown) => (_req: IncomingMessage, res: ServerResponse): void => {
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(doc))
  }

  before(async () => {
    server = createServer((req, res) => { handle(req, res) })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    agent = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  })
  after(async () => {
    server.closeAllConnections()
    await new Promise<void>((resolve) => server.close(() => { resolve() }))
  })

  void test('status: the table from GET /status.json, exit 0', async () => {
    let path = ''
    handle = (req, res) => { path = req.url ?? ''; json(fullStatus())(req, res) }
    const r = await flotilla(['status', '--agent', agent])
    assert.equal(r.code, 0, r.stderr)
    assert.equal(path, '/status.json')
    assert.match(r.stdout, /^agent 10\.0\.0\.1:5000/)
    assert.match(r.stdout, /^DOWNLOADS \(1\)$/m)
  })

  void test('status --json: what the agent said, unknown keys kept', async () => {
    handle = json({ ...fullStatus(), future: 1 })
    const r = await flotilla(['status', '--agent', agent, '--json'])
    assert.equal(r.code, 0, r.stderr)
    assert.equal((JSON.parse(r.stdout) as { future: number }).future, 1)
  })

  void test('status: JSON of another shape names the first wrong field, one line, exit 1', async () => {
    handle = json({ ...fullStatus(), peers: [{ id: 1 }] })
    const r = await flotilla(['status', '--agent', agent])
    assert.equal(r.code, 1)
    assert.equal(r.stdout, '')
    assert.match(r.stderr, /^flotilla: the agent at .* answered with JSON that is not a node status .*: peers\[0\]\.id: /)
    assert.equal(r.stderr.trim().split('\n').length, 1)
  })

  const precache = (phases: Array<PrecacheStatus['sets'][number]['images'][number]['phase']>): PrecacheStatus => ({
    ...fullStatus().precache!,
    sets: [{ name: 'web', matches: true, refreshSeconds: 60, images: phases.map((phase, i) => ({ ref: `docker.io/library/app${i}:1`, digest: null, phase, pinned: false, lastConfirmed: null, bytes: null, error: phase === 'Failed' ? 'manifest unknown' : null })) }],
  })

  void test('precache status --wait: plain lines as images become Ready, then exit 0', async () => {
    const steps = [['Pending', 'Pending'], ['Ready', 'Pulling'], ['Ready', 'Ready']] as const
    let n = 0
    handle = (req, res) => { json(precache([...steps[Math.min(n++, steps.length - 1)]!]))(req, res) }
    const r = await flotilla(['precache', 'status', '--agent', agent, '--wait', '--timeout', '20s'])
    assert.equal(r.code, 0, r.stderr)
    assert.deepEqual(r.stdout.trim().split('\n'), ['pre-cache: 0/2 (2 Pending)', 'pre-cache: 1/2 (1 Pulling)', 'pre-cache: 2/2', 'all 2 pre-cache images Ready'])
  })

  void test('precache status --wait: an image Failed ends it at once with exit 1, naming it', async () => {
    handle = json(precache(['Ready', 'Failed']))
    const r = await flotilla(['precache', 'status', '--agent', agent, '--wait'])
    assert.equal(r.code, 1)
    assert.match(r.stderr, /^flotilla: pre-cache on .*: web\/docker\.io\/library\/app1:1 Failed: manifest unknown$/m)
  })

  void test('precache status --wait: not Ready by the timeout is exit 1, naming what waits', async () => {
    handle = json(precache(['Pulling']))
    const r = await flotilla(['precache', 'status', '--agent', agent, '--wait', '--timeout', '1500ms'])
    assert.equal(r.code, 1)
    assert.match(r.stderr, /not Ready after 1\.5 s: web\/docker\.io\/library\/app0:1 Pulling$/m)
  })

  void test('precache status --timeout that is not a duration is refused', async () => {
    const r = await flotilla(['precache', 'status', '--agent', agent, '--wait', '--timeout', 'soon'])
    assert.equal(r.code, 1)
    assert.match(r.stderr, /--timeout "soon": expected a duration/)
  })
})
