// Crash safety and lifecycle: kill -9 mid-download keeps no partial blob, an agent killed with -9 restarts at
// once, a second process on the same data dir is refused, SIGTERM lets a response in flight finish and keeps
// nothing partial. Every process a test starts is stopped by t.after, also when the test fails.
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { readdir, readFile, stat } from 'node:fs/promises'
import { request as httpsRequest } from 'node:https'
import { createServer, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { after, before, describe, test, type TestContext } from 'node:test'
import { readProcStat } from '../../src/store/proc-stat.js'
import { startProcess, type ProcessHandle } from '../helpers/child-process.js'
import { freePort } from '../helpers/free-port.js'
import { runCommand } from '../helpers/run-command.js'
import { flotillaCommand, startFlotilla } from '../helpers/flotilla-agent.js'
import { makeTempDir, type TempDir } from '../helpers/temp-dir.js'
import { waitFor } from '../helpers/wait-for.js'

const SIZE = 16 * 1024 * 1024
const blob = Buffer.alloc(SIZE, 7)
for (let i = 0; i < SIZE; i += 4096) blob[i] = i % 251
const digest = `sha256:${createHash('sha256').update(blob).digest('hex')}`

/** An upstream that sends the first half of the blob and then stalls until released. */
class StallingUpstream {
  server!: Server
  stalled: ServerResponse[] = []
  isStalling = true
  gets = 0

  async start (): Promise<string> {
    this.server = createServer((req, res) => {
      if (req.url === '/v2/' || req.url === '/v2') { res.writeHead(200).end('{}'); return }
      if (req.url?.includes('/blobs/') === true) {
        this.gets++
        res.writeHead(200, { 'content-length': String(SIZE), 'content-type': 'application/octet-stream' })
        if (!this.isStalling) { res.end(blob); return }
        res.write(blob.subarray(0, SIZE / 2))
        this.stalled.push(res)
        return
      }
      res.writeHead(404).end()
    })
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve))
    return `127.0.0.1:${(this.server.address() as AddressInfo).port}`
  }

  release (): void {
    for (const r of this.stalled) r.end(blob.subarray(SIZE / 2))
    this.stalled = []
  }

  async close (): Promise<void> {
    for (const r of this.stalled) r.destroy()
    this.server.closeAllConnections()
    await new Promise<void>((resolve) => this.server.close(() => resolve()))
  }
}

async function tmpFiles (dataDir: string): Promise<Array<{ name: string, size: number }>> {
  const names = await readdir(join(dataDir, 'tmp')).catch(() => [] as string[])
  return await Promise.all(names.map(async (name) => ({ name, size: (await stat(join(dataDir, 'tmp', name))).size })))
}

/** An agent run as the child of a `sleep`, which never reaps it: killed with -9, it stays a zombie. */
interface UnreapedAgent {
  readonly pid: number
  readonly url: string
  /** The sh that became `sleep`; stopping it lets init reap the agent. */
  readonly parent: ProcessHandle
}

/**
 * Starts `flotilla serve` on `dataDir` under a parent that does not reap it, as an agent just killed whose
 * parent (containerd-shim, kubelet's restart, a supervisor) has not reaped it yet is to the next agent.
 */
async function startUnreapedAgent (t: TestContext, dataDir: string): Promise<UnreapedAgent> {
  const url = `http://127.0.0.1:${await freePort()}`
  const [cmd, args] = flotillaCommand(['serve', '--listen', url.slice('http://'.length), '--data-dir', dataDir])
  const parent = await startProcess('sh', ['-c', '"$@" & echo "agent pid $!"; exec sleep 1000000', 'sh', cmd, ...args], {
    name: 'unreaped-agent', env: { ...process.env, FLOTILLA_CONFIG: '' },
  })
  let seenPid = 0
  const agentPid = (): number => (seenPid ||= Number(/agent pid (\d+)/.exec(parent.output())?.[1] ?? 0))
  const isRunning = async (): Promise<boolean> => {
    const st = agentPid() > 0 ? await readProcStat(agentPid()) : undefined
    return st !== undefined && st.state !== 'Z'
  }
  // The agent first, then its parent: the agent is never left running as an orphan.
  t.after(async () => {
    if (await isRunning()) process.kill(agentPid(), 'SIGKILL')
    await parent.stop('SIGKILL', 0)
  })
  await waitFor(() => agentPid() > 0, { timeoutMs: 10_000, what: 'the agent\'s pid' })
  const pid = agentPid()
  await waitFor(async () => {
    if (!await isRunning()) return true
    return await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(1000) }).then(async (r) => { await r.arrayBuffer(); return r.status === 200 }, () => false)
  }, { timeoutMs: 30_000, what: `the agent (pid ${pid}) to be ready or to exit` })
  assert.ok(await isRunning(), `the agent exited instead of starting:\n${parent.output()}`)
  return { pid, url, parent }
}

void describe('durability and lifecycle', () => {
  let work: TempDir
  let upstream: StallingUpstream
  let host: string

  before(async () => {
    work = await makeTempDir('durability')
    upstream = new StallingUpstream()
    host = await upstream.start()
  })
  after(async () => {
    await upstream?.close()
    await work?.cleanup()
  })

  test('kill -9 during a download: after restart no partial blob is in place and the blob pulls whole', async (t) => {
    const dataDir = join(work.path, 'kill9')
    const ctrl = new AbortController()
    t.after(() => {
      ctrl.abort()
      upstream.release()
      upstream.isStalling = true
    })
    const agent = await startFlotilla({ dataDir, registries: { [host]: `http://${host}` }, args: ['--default-registry', host] })
    t.after(agent.stop)
    // What must happen before the kill: the client has a good part of the half the upstream sends, and the
    // store has begun writing it to tmp/ (how much of it is on disk depends on write batching and load).
    let received = 0
    const pending = fetch(`${agent.url}/v2/x/blobs/${digest}`, { signal: ctrl.signal }).then(async (r) => {
      for await (const chunk of r.body ?? []) received += (chunk as Uint8Array).length
    }).catch(() => undefined)
    await waitFor(async () => received >= SIZE / 4 && (await tmpFiles(dataDir)).some((f) => f.size > 0), {
      timeoutMs: 120_000, what: 'the client to receive a quarter of the blob and tmp/ to hold part of it',
    })
    await agent.kill9()
    ctrl.abort()
    await pending
    await assert.rejects(stat(join(dataDir, 'blobs', 'sha256', digest.slice(7))), { code: 'ENOENT' })

    upstream.release()
    upstream.isStalling = false
    const again = await startFlotilla({ dataDir, registries: { [host]: `http://${host}` }, args: ['--default-registry', host] })
    t.after(again.stop)
    assert.deepEqual(await tmpFiles(dataDir), [], 'leftovers are cleared at start')
    const res = await fetch(`${again.url}/v2/x/blobs/${digest}`, { signal: AbortSignal.timeout(30_000) })
    assert.equal(res.status, 200)
    const body = Buffer.from(await res.arrayBuffer())
    assert.equal(`sha256:${createHash('sha256').update(body).digest('hex')}`, digest)
    // The client has its last byte once the bytes verified; the store's fsync and rename may still be under way.
    await waitFor(async () => (await stat(join(dataDir, 'blobs', 'sha256', digest.slice(7))).catch(() => undefined))?.size === SIZE,
      { timeoutMs: 10_000, what: 'the blob committed to the store' })
  })

  test('defect 7: an agent killed with -9 and not reaped yet does not stop the next one from starting at once', async (t) => {
    const dataDir = join(work.path, 'restart')
    let agent = await startUnreapedAgent(t, dataDir)
    for (let i = 0; i < 5; i++) {
      process.kill(agent.pid, 'SIGKILL')
      const killed = agent.pid
      agent = await startUnreapedAgent(t, dataDir)
      assert.equal((await readProcStat(killed))?.state, 'Z', 'the killed agent is still there, unreaped')
      assert.equal((JSON.parse(await readFile(join(dataDir, 'flotilla.lock'), 'utf8')) as { pid: number }).pid, agent.pid)
    }
  })

  test('a second process on the same data dir is refused with one clear line', async (t) => {
    const dataDir = join(work.path, 'locked')
    const agent = await startFlotilla({ dataDir })
    t.after(agent.stop)
    const [cmd, args] = flotillaCommand(['serve', '--listen', '127.0.0.1:0', '--data-dir', dataDir])
    const r = await runCommand(cmd, args, { timeoutMs: 30_000 })
    assert.equal(r.code, 3)
    const lines = r.stderr.trim().split('\n')
    assert.equal(lines.length, 1, r.stderr)
    assert.match(lines[0] ?? '', /in use by another flotilla process \(pid \d+\)/)
  })

  test('bad configuration is refused with one clear line and a non-zero exit', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['serve', '--listen', 'nonsense'], /listen: expected HOST:PORT/],
      [['serve', '--registry', 'docker.io'], /expected NAME=URL/],
      [['serve', '--registry', 'x.io=ftp://x.io'], /registries\.x\.io\.endpoint/],
      [['serve', '--config', join(work.path, 'missing.yaml')], /cannot read config file .*missing\.yaml/],
    ]
    for (const [args, message] of cases) {
      const [cmd, argv] = flotillaCommand([...args, '--data-dir', join(work.path, 'never')])
      const r = await runCommand(cmd, argv, { timeoutMs: 30_000 })
      assert.notEqual(r.code, 0, args.join(' '))
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr)
      assert.match(r.stderr, /^flotilla: /)
      assert.match(r.stderr, message)
    }
  })

  test('with a certificate and key the registry API is served over HTTPS (central mirror)', async (t) => {
    const cert = join(work.path, 'tls.crt')
    const key = join(work.path, 'tls.key')
    const made = await runCommand('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1',
      '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', key, '-out', cert], { timeoutMs: 30_000 })
    assert.equal(made.code, 0, made.stderr)
    const agent = await startFlotilla({ dataDir: join(work.path, 'tls'), args: ['--tls-cert', cert, '--tls-key', key], readyTimeoutMs: 30_000, tls: true })
    t.after(agent.stop)
    const body = await new Promise<{ status: number, text: string }>((resolve, reject) => {
      const req = httpsRequest(`https://${agent.host}/v2/`, { ca: readFileSync(cert), timeout: 10_000 }, (res) => {
        let text = ''
        res.on('data', (c: Buffer) => { text += c.toString() })
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }))
      })
      req.on('error', reject)
      req.end()
    })
    assert.equal(body.status, 200)
    assert.equal(body.text, '{}')
  })

  test('SIGTERM: the response in flight finishes within the bound, nothing partial is kept, the process exits 0', async (t) => {
    const dataDir = join(work.path, 'sigterm')
    t.after(() => upstream.release())
    const agent = await startFlotilla({ dataDir, registries: { [host]: `http://${host}` }, args: ['--default-registry', host] })
    t.after(agent.stop)
    const res = fetch(`${agent.url}/v2/x/blobs/${digest}`, { signal: AbortSignal.timeout(30_000) }).then(async (r) => ({ status: r.status, body: Buffer.from(await r.arrayBuffer()) }))
    await waitFor(() => upstream.stalled.length > 0, { timeoutMs: 20_000, what: 'download under way' })
    const exited = agent.process.stop('SIGTERM', 20_000)
    // New connections are refused once shutdown begins.
    await waitFor(async () => await fetch(`${agent.url}/healthz`, { signal: AbortSignal.timeout(1000) }).then(() => false, () => true), { timeoutMs: 10_000, what: 'listener closed' })
    upstream.release()
    const r = await res
    assert.equal(r.status, 200)
    assert.equal(`sha256:${createHash('sha256').update(r.body).digest('hex')}`, digest)
    const exit = await exited
    assert.equal(exit.code, 0)
    assert.deepEqual(await tmpFiles(dataDir), [])
  })
})
