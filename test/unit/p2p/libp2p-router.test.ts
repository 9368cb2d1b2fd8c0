import '../../../src/p2p/polyfill.js'
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { pino } from 'pino'
import { createLibp2pRouter, generateClusterKey, type Libp2pRouterOptions } from '../../../src/p2p/libp2p-router.js'

let dir: string
const routers: Array<{ close: () => Promise<void> }> = []
before(async () => { dir = await mkdtemp(join(tmpdir(), 'flotilla-libp2p-')) })
after(async () => {
  await Promise.all(routers.map(r => r.close()))
  await rm(dir, { recursive: true, force: true })
})

const options = (name: string, extra: Partial<Libp2pRouterOptions> = {}): Libp2pRouterOptions => ({
  listen: '/ip4/127.0.0.1/tcp/0',
  bootstrap: [],
  clusterKey: new TextEncoder().encode(generateClusterKey()),
  identityFile: join(dir, `${name}.key`),
  httpAddress: '127.0.0.1:5000',
  logger: pino({ level: 'silent' }),
  ...extra,
})

async function freePort (): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1')
  await new Promise(resolve => server.once('listening', resolve))
  const { port } = server.address() as { port: number }
  await new Promise(resolve => server.close(resolve))
  return port
}

void test('bad options are TypeErrors (or P2pError for the key) naming the option', { timeout: 10_000 }, async () => {
  const cases: Array<[Partial<Libp2pRouterOptions>, RegExp]> = [
    [{ listen: '/ip4/127.0.0.1/udp/1' }, /listen address/],
    [{ listen: 'not a multiaddr' }, /listen address/],
    [{ bootstrap: ['10.0.0.1:5001'] }, /bootstrap entry "10\.0\.0\.1:5001"/],
    [{ httpAddress: 'nope' }, /httpAddress/],
    [{ readvertiseIntervalMs: 0 }, /readvertiseIntervalMs/],
    [{ readvertiseIntervalMs: 60_000, recordTtlMs: 30_000 }, /recordTtlMs must be longer/],
    [{ protocolPrefix: 'flotilla' }, /protocolPrefix/],
    [{ clusterKey: new TextEncoder().encode('garbage') }, /invalid cluster key/],
  ]
  for (const [extra, message] of cases) {
    await assert.rejects(createLibp2pRouter(options('bad', extra)), message, JSON.stringify(extra, (_k, v: unknown) => v instanceof Uint8Array ? '<bytes>' : v))
  }
})

void test('a node with no bootstrap list is ready alone: advertise returns, lookups miss at once', { timeout: 15_000 }, async () => {
  const router = await createLibp2pRouter(options('alone', { zone: 'z1' }))
  routers.push(router)
  assert.equal(router.ready(), true)
  assert.deepEqual(router.peers(), [])
  assert.deepEqual({ ...router.self(), id: '' }, { id: '', httpAddress: '127.0.0.1:5000', zone: 'z1' })
  assert.match(router.self().id, /^12D3KooW/)
  assert.ok(router.multiaddrs().every(ma => ma.endsWith(`/p2p/${router.self().id}`)))
  await router.advertise([`sha256:${'a'.repeat(64)}`])
  const started = performance.now()
  const found = []
  for await (const peer of router.findProviders(`sha256:${'a'.repeat(64)}`, { signal: AbortSignal.timeout(5_000) })) found.push(peer)
  assert.deepEqual(found, [])
  assert.ok(performance.now() - started < 100)
  await router.withdraw([`sha256:${'a'.repeat(64)}`])
  await router.close()
  await router.close()
  assert.equal(router.ready(), false)
})

void test('a bootstrap list that holds only our own address counts as alone (one-node cluster)', { timeout: 15_000 }, async () => {
  const port = await freePort()
  const router = await createLibp2pRouter(options('self-only', {
    listen: `/ip4/127.0.0.1/tcp/${port}`,
    bootstrap: [`/ip4/127.0.0.1/tcp/${port}`],
  }))
  routers.push(router)
  const started = performance.now()
  while (!router.ready() && performance.now() - started < 5_000) await new Promise(resolve => setTimeout(resolve, 10))
  assert.equal(router.ready(), true)
  await router.close()
})

void test('a bootstrap peer that never answers leaves the router not ready, and lookups still end on time', { timeout: 15_000 }, async () => {
  const port = await freePort() // nothing listens there
  const router = await createLibp2pRouter(options('lonely', { bootstrap: [`/ip4/127.0.0.1/tcp/${port}`], bootstrapIntervalMs: 200 }))
  routers.push(router)
  await new Promise(resolve => setTimeout(resolve, 500))
  assert.equal(router.ready(), false)
  const started = performance.now()
  for await (const _peer of router.findProviders('docker.io/library/busybox:latest', { signal: AbortSignal.timeout(300) })) assert.fail('no providers expected')
  assert.ok(performance.now() - started < 400)
  await router.close()
})
