/**
 * libp2p routers in separate processes on 127.0.0.1 (test/e2e/fixtures-p2p/router-node.ts), driven over
 * stdin/stdout JSON lines: bootstrap by address without peer id and by dns:, advertise → find across
 * nodes with timings, a wrong cluster key kept out, identity kept across restarts.
 */
import assert from 'node:assert/strict'
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process'
import { mkdtemp, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { after, before, describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { generateClusterKey } from '../../src/p2p/cluster-key.js'
import type { PeerInfo } from '../../src/p2p/router.js'
import type { NodeConfig } from './fixtures-p2p/router-node.js'

const FIXTURE = fileURLToPath(new URL('./fixtures-p2p/router-node.ts', import.meta.url))
const START_TIMEOUT_MS = 20_000
const REQUEST_TIMEOUT_MS = 15_000


interface Started { id: string, multiaddrs: string[], startMs: number, rssMiB: number }
interface Status { ready: boolean, peers: PeerInfo[], self: PeerInfo, rssMiB: number }
interface FindResult { providers: PeerInfo[], firstMs?: number, totalMs: number }

/** One router process; requests are answered by sequence number. */
class RouterNode {
  readonly #child: ChildProcessWithoutNullStreams
  readonly #waiting = new Map<number, { resolve: (value: Record<string, unknown>) => void, reject: (err: Error) => void }>()
  readonly #exited: Promise<void>
  #seq = 0
  #stderr = ''
  started!: Started

  private constructor (readonly name: string, config: NodeConfig, onStarted: (s: Started) => void, onFailed: (err: Error) => void) {
    this.#child = spawn(process.execPath, ['--import', 'tsx', FIXTURE, JSON.stringify(config)], { stdio: ['pipe', 'pipe', 'pipe'] })
    this.#exited = new Promise(resolve => this.#child.once('exit', () => resolve()))
    this.#child.stderr.setEncoding('utf8').on('data', (chunk: string) => { this.#stderr = (this.#stderr + chunk).slice(-4000) })
    createInterface({ input: this.#child.stdout }).on('line', (line) => {
      let message: Record<string, unknown>
      try {
        message = JSON.parse(line) as Record<string, unknown>
      } catch {
        return // stray output
      }
      if (message.type === 'started') {
        onStarted(message as unknown as Started)
        return
      }
      const waiter = this.#waiting.get(message.seq as number)
      if (waiter === undefined) return
      this.#waiting.delete(message.seq as number)
      if (message.ok === true) waiter.resolve(message)
      else waiter.reject(new Error(`${name}: ${String(message.error)}`))
    })
    this.#child.once('exit', (code) => {
      const err = new Error(`${name} exited (${code ?? 'signal'}): ${this.#stderr}`)
      onFailed(err)
      for (const waiter of this.#waiting.values()) waiter.reject(err)
      this.#waiting.clear()
    })
  }

  static async start (name: string, config: NodeConfig): Promise<RouterNode> {
    let node!: RouterNode
    const started = new Promise<Started>((resolve, reject) => {
      node = new RouterNode(name, config, resolve, reject)
    })
    const timer = setTimeout(() => node.kill(), START_TIMEOUT_MS)
    try {
      node.started = await started
    } finally {
      clearTimeout(timer)
    }
    return node
  }

  get id (): string { return this.started.id }
  /** Our address without /p2p/<id>: what an operator would write. */
  get bareAddress (): string { return (this.started.multiaddrs[0] ?? '').replace(/\/p2p\/[^/]+$/, '') }
  get port (): number { return Number(/\/tcp\/(\d+)/.exec(this.bareAddress)?.[1]) }

  async request<T> (op: string, args: object = {}, timeoutMs = REQUEST_TIMEOUT_MS): Promise<T> {
    const seq = ++this.#seq
    const reply = new Promise<Record<string, unknown>>((resolve, reject) => this.#waiting.set(seq, { resolve, reject }))
    this.#child.stdin.write(`${JSON.stringify({ seq, op, ...args })}\n`)
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`${this.name}: ${op} timed out after ${timeoutMs} ms`)), timeoutMs)
    })
    try {
      return await Promise.race([reply, timeout]) as T
    } finally {
      clearTimeout(timer)
      this.#waiting.delete(seq)
    }
  }

  status (): Promise<Status> { return this.request<Status>('status') }

  async close (): Promise<void> {
    if (this.#child.exitCode !== null || this.#child.signalCode !== null) return
    await this.request('close', {}, 5_000).catch(() => {})
    const timer = setTimeout(() => this.kill(), 5_000)
    await this.#exited
    clearTimeout(timer)
  }

  kill (): void {
    this.#child.kill('SIGKILL')
  }
}

async function waitFor (what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<number> {
  const started = performance.now()
  while (performance.now() - started < timeoutMs) {
    if (await check()) return performance.now() - started
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
}

const digest = (n: number): string => `sha256:${n.toString(16).padStart(64, '0')}`
const percentile = (values: number[], p: number): number => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? NaN
}
const ms = (n: number | undefined): string => n === undefined ? '-' : `${n.toFixed(1)} ms`

void describe('libp2p router across processes', { timeout: 120_000 }, () => {
  let dir: string
  const clusterKey = generateClusterKey()
  const nodes: RouterNode[] = []
  let a: RouterNode, b: RouterNode, c: RouterNode, d: RouterNode

  const config = (name: string, httpPort: number, extra: Partial<NodeConfig> = {}): NodeConfig => ({
    listen: '/ip4/127.0.0.1/tcp/0',
    bootstrap: [],
    clusterKey,
    identityFile: join(dir, name, 'p2p-identity.key'),
    httpAddress: `127.0.0.1:${httpPort}`,
    ...extra,
  })
  const start = async (name: string, cfg: NodeConfig): Promise<RouterNode> => {
    const node = await RouterNode.start(name, cfg)
    nodes.push(node)
    return node
  }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'flotilla-p2p-'))
    a = await start('a', config('a', 7001, { zone: 'zone-a' }))
    // operators know addresses, not peer ids: B and C get A's bare address, D a dns: name and A's port
    ;[b, c, d] = await Promise.all([
      start('b', config('b', 7002, { bootstrap: [a.bareAddress] })),
      start('c', config('c', 7003, { bootstrap: [a.bareAddress] })),
      start('d', config('d', 7004, { bootstrap: [`dns:localhost:${a.port}`] })),
    ])
  })

  after(async () => {
    await Promise.all(nodes.map(node => node.close()))
    if (dir !== undefined) await rm(dir, { recursive: true, force: true })
  })

  void test('bootstraps by address without peer id, and by dns: name', { timeout: 30_000 }, async (t) => {
    const readyMs = await waitFor('all routers ready', async () => {
      const statuses = await Promise.all([a, b, c, d].map(node => node.status()))
      return statuses.every(s => s.ready) && (statuses[0]?.peers.length ?? 0) === 3
    }, 20_000)
    const statusA = await a.status()
    assert.deepEqual(new Set(statusA.peers.map(p => p.id)), new Set([b.id, c.id, d.id]))
    const fromB = (await b.status()).peers.find(p => p.id === a.id)
    assert.deepEqual(fromB, { id: a.id, httpAddress: '127.0.0.1:7001', zone: 'zone-a' })
    // B, C and D were told only of A: A's peer list brings them together (a small cluster is a full mesh)
    const meshMs = await waitFor('B, C and D to see each other', async () =>
      (await Promise.all([b, c, d].map(node => node.status()))).every(s => s.peers.length === 3), 20_000)
    t.diagnostic(`createLibp2pRouter: ${[a, b, c, d].map(n => `${n.name} ${n.started.startMs} ms`).join(', ')}`)
    t.diagnostic(`all ready ${ms(readyMs)} after the last start; full mesh ${ms(meshMs)} later`)
  })

  void test('C finds A as provider of a digest with A\'s httpAddress and zone', { timeout: 30_000 }, async (t) => {
    const key = digest(1)
    const advertised = await a.request<{ ms: number }>('advertise', { keys: [key] })
    const found = await c.request<FindResult>('find', { key, timeoutMs: 5_000 })
    assert.deepEqual(found.providers, [{ id: a.id, httpAddress: '127.0.0.1:7001', zone: 'zone-a' }])
    assert.ok((found.firstMs ?? Infinity) < 1_000, `first provider after ${ms(found.firstMs)}`)
    t.diagnostic(`advertise ${ms(advertised.ms)}; find first ${ms(found.firstMs)}, whole lookup ${ms(found.totalMs)}`)
  })

  void test('find latency over many keys, tag keys, several providers', { timeout: 60_000 }, async (t) => {
    const advertiseMs: number[] = []
    const firstMs: number[] = []
    for (let i = 100; i < 120; i++) {
      const key = digest(i)
      advertiseMs.push((await b.request<{ ms: number }>('advertise', { keys: [key] })).ms)
      const found = await d.request<FindResult>('find', { key, timeoutMs: 5_000, limit: 1 })
      assert.equal(found.providers[0]?.id, b.id, `key ${i}`)
      firstMs.push(found.firstMs ?? Infinity)
    }
    t.diagnostic(`advertise p50 ${ms(percentile(advertiseMs, 0.5))} max ${ms(Math.max(...advertiseMs))}; ` +
      `find (limit 1) p50 ${ms(percentile(firstMs, 0.5))} p90 ${ms(percentile(firstMs, 0.9))} max ${ms(Math.max(...firstMs))} (n=${firstMs.length})`)

    const tag = 'docker.io/library/nginx:1.27'
    await Promise.all([c.request('advertise', { keys: [tag] }), d.request('advertise', { keys: [tag] })])
    const found = await a.request<FindResult>('find', { key: tag, timeoutMs: 5_000 })
    assert.deepEqual(new Set(found.providers.map(p => p.id)), new Set([c.id, d.id]))
    assert.deepEqual(found.providers.find(p => p.id === c.id), { id: c.id, httpAddress: '127.0.0.1:7003' })
    t.diagnostic(`tag with 2 providers: first ${ms(found.firstMs)}, all ${ms(found.totalMs)}`)
  })

  void test('a node that joins later finds what was announced before it came, without a walk', { timeout: 30_000 }, async (t) => {
    // digest(100..119) were announced by B before E existed: Kademlia gave those records to the others only
    const e = await start('e', config('e', 7005, { bootstrap: [c.bareAddress] }))
    const foundMs = await waitFor('E to find B\'s keys', async () => {
      const found = await e.request<FindResult>('find', { key: digest(105), timeoutMs: 1_000 })
      return found.providers.some(p => p.id === b.id)
    }, 15_000)
    const found = await e.request<FindResult>('find', { key: digest(119), timeoutMs: 1_000 })
    assert.deepEqual(found.providers.map(p => p.id), [b.id])
    const miss = await e.request<FindResult>('find', { key: digest(998), timeoutMs: 1_000 })
    assert.deepEqual(miss.providers, [])
    t.diagnostic(`found ${ms(foundMs)} after E started; next find ${ms(found.totalMs)}, a miss ${ms(miss.totalMs)} (answered from what E holds)`)
    await e.close()
  })

  void test('past a k-bucket of peers (k lowered to 2) lookups walk the DHT and still find, and miss in time', { timeout: 40_000 }, async (t) => {
    const k = { kBucketSize: 2 }
    const w1 = await start('w1', config('w1', 7021, k))
    const [w2, w3, w4] = await Promise.all([7022, 7023, 7024].map(async (port, i) =>
      await start(`w${i + 2}`, config(`w${i + 2}`, port, { ...k, bootstrap: [w1.bareAddress] })))) as [RouterNode, RouterNode, RouterNode]
    const walkers = [w1, w2, w3, w4]
    await waitFor('the walkers ready', async () => (await Promise.all(walkers.map(node => node.status()))).every(s => s.ready), 15_000)
    const key = digest(5151)
    await w2.request('advertise', { keys: [key] })
    const foundMs = await waitFor('w4 to find w2 by walking', async () => {
      const found = await w4.request<FindResult>('find', { key, timeoutMs: 2_000 })
      return found.providers.some(p => p.id === w2.id)
    }, 15_000)
    const miss = await w3.request<FindResult>('find', { key: digest(5152), timeoutMs: 1_000 })
    assert.deepEqual(miss.providers, [])
    assert.ok(miss.totalMs < 1_500, `miss took ${ms(miss.totalMs)}`)
    t.diagnostic(`k=2, 4 nodes: found ${ms(foundMs)} after announcing; a walked miss ${ms(miss.totalMs)}`)
    await Promise.all(walkers.map(node => node.close()))
  })

  void test('never returns itself, and a miss ends within its deadline', { timeout: 30_000 }, async (t) => {
    const own = await a.request<FindResult>('find', { key: digest(1), timeoutMs: 2_000 })
    assert.deepEqual(own.providers, [])
    const miss = await c.request<FindResult>('find', { key: digest(999), timeoutMs: 1_000 })
    assert.deepEqual(miss.providers, [])
    assert.ok(miss.totalMs < 1_500, `miss took ${ms(miss.totalMs)}`)
    t.diagnostic(`miss answered in ${ms(miss.totalMs)} (deadline 1000 ms)`)
  })

  void test('withdraw stops advertising; remote records expire while re-advertised ones live on', { timeout: 60_000 }, async (t) => {
    // short timings: re-advertise every 1 s, records kept 2.5 s (swept every ~0.6 s)
    const timing = { readvertiseIntervalMs: 1_000, recordTtlMs: 2_500 }
    const x = await start('x', config('x', 7013, timing))
    const y = await start('y', config('y', 7014, { ...timing, bootstrap: [x.bareAddress] }))
    await waitFor('y ready', async () => (await y.status()).ready, 10_000)
    const [kept, withdrawn] = [digest(7001), digest(7002)]
    await x.request('advertise', { keys: [kept, withdrawn] })
    const providersOf = async (key: string): Promise<string[]> =>
      (await y.request<FindResult>('find', { key, timeoutMs: 1_000 })).providers.map(p => p.id)
    assert.deepEqual(await providersOf(withdrawn), [x.id])
    await x.request('withdraw', { keys: [withdrawn] })
    // kad-dht has no un-provide: Y keeps X's record until it expires, then lookups miss
    const goneMs = await waitFor('withdrawn record to expire on y', async () => (await providersOf(withdrawn)).length === 0, 10_000)
    await new Promise(resolve => setTimeout(resolve, 1_000)) // now well past the first record's lifetime
    assert.deepEqual(await providersOf(kept), [x.id], 're-advertising keeps the other key alive past recordTtlMs')
    t.diagnostic(`withdrawn key gone from lookups ${ms(goneMs)} after withdraw (recordTtlMs 2500)`)
    await Promise.all([x.close(), y.close()])
  })

  void test('a router with the wrong cluster key cannot join or find', { timeout: 30_000 }, async (t) => {
    const intruder = await start('intruder', config('intruder', 7009, {
      clusterKey: generateClusterKey(),
      bootstrap: [a.bareAddress],
      bootstrapIntervalMs: 500,
    }))
    await new Promise(resolve => setTimeout(resolve, 2_000))
    const status = await intruder.status()
    assert.equal(status.ready, false)
    assert.deepEqual(status.peers, [])
    const found = await intruder.request<FindResult>('find', { key: digest(1), timeoutMs: 1_000 })
    assert.deepEqual(found.providers, [])
    assert.ok(!(await a.status()).peers.some(p => p.id === intruder.id))
    t.diagnostic('intruder with another PSK: not ready, no peers, no providers after 2 s of retries')
    await intruder.close()
  })

  void test('the identity file gives the same peer id across restarts', { timeout: 30_000 }, async (t) => {
    const cfg = config('persist', 7010)
    const first = await start('persist-1', cfg)
    await first.close()
    const mode = (await stat(cfg.identityFile)).mode & 0o777
    assert.equal(mode, 0o600)
    const second = await start('persist-2', cfg)
    assert.equal(second.id, first.id)
    await second.close()
    t.diagnostic(`peer id ${first.id} kept across restart; identity file mode ${mode.toString(8)}`)
  })

  void test('after losing its only peer a router bootstraps again and re-advertises', { timeout: 60_000 }, async (t) => {
    const hubConfig = config('hub', 7011)
    let hub = await start('hub-1', hubConfig)
    const leaf = await start('leaf', config('leaf', 7012, { bootstrap: [hub.bareAddress], bootstrapIntervalMs: 1_000 }))
    await waitFor('leaf ready', async () => (await leaf.status()).ready, 10_000)
    const key = digest(4242)
    await leaf.request('advertise', { keys: [key] })

    await hub.close()
    await waitFor('leaf to notice', async () => !(await leaf.status()).ready, 10_000)
    // same identity and port: what a restarted pod with a stable address looks like
    hub = await start('hub-2', { ...hubConfig, listen: `/ip4/127.0.0.1/tcp/${hub.port}` })
    const rejoinMs = await waitFor('leaf ready again', async () => (await leaf.status()).ready, 15_000)
    // the new hub process holds no records: leaf's keys must reach it again
    const refoundMs = await waitFor('hub finds leaf', async () => {
      const found = await hub.request<FindResult>('find', { key, timeoutMs: 1_000 })
      return found.providers.some(p => p.id === leaf.id)
    }, 15_000)
    t.diagnostic(`rejoined ${ms(rejoinMs)} after the hub restarted; keys found again ${ms(refoundMs)} later`)
    await Promise.all([hub.close(), leaf.close()])
  })

  void test('memory per router process', { timeout: 15_000 }, async (t) => {
    const statuses = await Promise.all([a, b, c, d].map(node => node.status()))
    t.diagnostic(`RSS: ${statuses.map((s, i) => `${[a, b, c, d][i]?.name} ${s.rssMiB} MiB`).join(', ')} (node + tsx + libp2p)`)
    for (const s of statuses) assert.ok(s.rssMiB < 400, `rss ${s.rssMiB} MiB`)
  })
})
