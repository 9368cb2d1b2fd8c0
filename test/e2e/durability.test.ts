// Crash safety and lifecycle: kill -9 mid-download keeps no partial blob, a second process on the same
// data dir is refused, SIGTERM lets a response in flight finish and keeps nothing partial.
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { readdir, stat } from 'node:fs/promises'
import { request as httpsRequest } from 'node:https'
import { createServer, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
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

  test('kill -9 during a download: after restart no partial blob is in place and the blob pulls whole', async () => {
    const dataDir = join(work.path, 'kill9')
    const agent = await startFlotilla({ dataDir, registries: { [host]: `http://${host}` }, args: ['--default-registry', host] })
    const url = `${agent.url}/v2/x/blobs/${digest}`
    const ctrl = new AbortController()
    const pending = fetch(url, { signal: ctrl.signal }).then(async (r) => await r.arrayBuffer()).catch(() => undefined)
    await waitFor(async () => (await tmpFiles(dataDir)).some((f) => f.size >= SIZE / 2), { timeoutMs: 20_000, what: 'half the blob in tmp/' })
    await agent.kill9()
    ctrl.abort()
    await pending
    await assert.rejects(stat(join(dataDir, 'blobs', 'sha256', digest.slice(7))), { code: 'ENOENT' })

    upstream.release()
    upstream.isStalling = false
    const again = await startFlotilla({ dataDir, registries: { [host]: `http://${host}` }, args: ['--default-registry', host] })
    try {
      assert.deepEqual(await tmpFiles(dataDir), [], 'leftovers are cleared at start')
      const res = await fetch(`${again.url}/v2/x/blobs/${digest}`, { signal: AbortSignal.timeout(30_000) })
      assert.equal(res.status, 200)
      const body = Buffer.from(await res.arrayBuffer())
      assert.equal(`sha256:${createHash('sha256').update(body).digest('hex')}`, digest)
      assert.equal((await stat(join(dataDir, 'blobs', 'sha256', digest.slice(7)))).size, SIZE)
    } finally {
      await again.stop()
      upstream.isStalling = true
    }
  })

  test('a second process on the same data dir is refused with one clear line', async () => {
    const dataDir = join(work.path, 'locked')
    const agent = await startFlotilla({ dataDir })
    try {
      const [cmd, args] = flotillaCommand(['serve', '--listen', '127.0.0.1:0', '--data-dir', dataDir])
      const r = await runCommand(cmd, args, { timeoutMs: 30_000 })
      assert.notEqual(r.code, 0)
      const lines = r.stderr.trim().split('\n')
      assert.equal(lines.length, 1, r.stderr)
      assert.match(lines[0] ?? '', /in use by another flotilla process \(pid \d+\)/)
    } finally {
      await agent.stop()
    }
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

  test('with a certificate and key the registry API is served over HTTPS (central mirror)', async () => {
    const cert = join(work.path, 'tls.crt')
    const key = join(work.path, 'tls.key')
    const made = await runCommand('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1',
      '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', key, '-out', cert], { timeoutMs: 30_000 })
    assert.equal(made.code, 0, made.stderr)
    const agent = await startFlotilla({ dataDir: join(work.path, 'tls'), args: ['--tls-cert', cert, '--tls-key', key], readyTimeoutMs: 30_000, tls: true })
    try {
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
    } finally {
      await agent.stop()
    }
  })

  test('SIGTERM: the response in flight finishes within the bound, nothing partial is kept, the process exits 0', async () => {
    const dataDir = join(work.path, 'sigterm')
    const agent = await startFlotilla({ dataDir, registries: { [host]: `http://${host}` }, args: ['--default-registry', host] })
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
    await agent.stop()
  })
})
