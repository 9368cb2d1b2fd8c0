import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, before, describe, it } from 'node:test'
import type { Digest } from '../../../src/oci/index.js'
import { ClientAddress } from '../../../src/redirect/client-address.js'
import { ExistenceChecker } from '../../../src/redirect/existence-checker.js'
import { RegionTable } from '../../../src/redirect/region-table.js'
import { Redirector } from '../../../src/redirect/redirector.js'

const HELD = `sha256:${'1'.repeat(64)}` as Digest
const LACKING = `sha256:${'2'.repeat(64)}` as Digest

describe('RegionTable', () => {
  it('refuses a bad CIDR, a region twice and a network in two regions, in one line', () => {
    const r = (name: string, cidrs: string[]): { name: string, cidrs: string[], blobBase: string } => ({ name, cidrs, blobBase: 'https://x.example' })
    assert.throws(() => new RegionTable([r('a', ['10.0.0.0/33'])]), { code: 'ERR_CONFIG', message: /^redirect\.regions: a: "10\.0\.0\.0\/33" is not an IPv4 or IPv6 CIDR$/ })
    assert.throws(() => new RegionTable([r('a', ['10.0.0.0/8']), r('a', ['11.0.0.0/8'])]), /region a is declared twice/)
    assert.throws(() => new RegionTable([r('a', ['10.0.0.0/8']), r('b', ['10.0.0.0/8'])]), /10\.0\.0\.0\/8 is in both a and b/)
  })
})

describe('ClientAddress', () => {
  const a = new ClientAddress(['10.0.0.0/8', '2001:db8::/32'])
  const cases: Array<[string, string | undefined, string | undefined]> = [
    // An untrusted socket: its own address, whatever X-Forwarded-For says.
    ['192.0.2.1', '10.1.4.7', '192.0.2.1'],
    // A trusted proxy: the right-most hop that is not a trusted proxy.
    ['10.0.0.5', '203.0.113.9, 10.9.9.9', '203.0.113.9'],
    ['10.0.0.5', '203.0.113.9, 198.51.100.7, 10.9.9.9', '198.51.100.7'],
    ['10.0.0.5', '198.51.100.7:5555', '198.51.100.7'],
    ['10.0.0.5', '[2001:db9::1]:80', '2001:db9::1'],
    ['::ffff:10.0.0.5', '198.51.100.7', '198.51.100.7'],
    // A trusted proxy with no header, or only trusted hops: the left-most known address.
    ['10.0.0.5', undefined, '10.0.0.5'],
    ['10.0.0.5', '10.1.1.1, 10.2.2.2', '10.1.1.1'],
  ]
  for (const [socket, xff, expected] of cases) {
    it(`${socket} with X-Forwarded-For ${String(xff)} is ${String(expected)}`, () => { assert.equal(a.of(socket, xff), expected) })
  }
})

describe('Redirector with regions answering HEADs', () => {
  let region: Server
  let heads = 0
  let isDown = false
  let base = ''
  const origin = 'https://origin.example'

  before(async () => {
    region = createServer((req, res) => {
      heads++
      if (isDown) { req.socket.destroy(); return }
      res.writeHead(req.url?.endsWith(HELD) === true ? 200 : 404, { 'content-length': '0' })
      res.end()
    }).listen(0, '127.0.0.1')
    await new Promise((resolve) => region.once('listening', resolve))
    base = `http://127.0.0.1:${(region.address() as AddressInfo).port}`
  })
  after(() => { region.closeAllConnections(); region.close() })

  const redirector = (): { r: Redirector, checker: ExistenceChecker } => {
    const checker = new ExistenceChecker({ hitTtlMs: 60_000, missTtlMs: 60_000, timeoutMs: 500 })
    const table = new RegionTable([
      { name: 'eu-west', cidrs: ['10.1.0.0/16', '2001:db8:1::/48'], blobBase: base },
      { name: 'eu-west-1a', cidrs: ['10.1.4.0/24'], blobBase: `${base}/` },
    ])
    return { r: new Redirector({ origin, table, addresses: new ClientAddress(['127.0.0.0/8']), checker }), checker }
  }

  it('sends a client to its longest-prefix region when the region has the blob; the origin otherwise', async () => {
    const { r, checker } = redirector()
    heads = 0
    const inner = await r.decide('10.1.4.7', undefined, 'team/app', HELD)
    assert.deepEqual(inner, { location: `${base}/v2/team/app/blobs/${HELD}`, region: 'eu-west-1a', reason: 'region', client: '10.1.4.7' })
    assert.equal((await r.decide('10.1.9.9', undefined, 'team/app', HELD)).region, 'eu-west')
    assert.equal((await r.decide('2001:db8:1::5', undefined, 'team/app', HELD)).region, 'eu-west')
    assert.deepEqual(await r.decide('10.2.0.1', undefined, 'team/app', HELD), { location: `${origin}/v2/team/app/blobs/${HELD}`, region: null, reason: 'no-region', client: '10.2.0.1' })
    // Behind a trusted proxy, X-Forwarded-For decides.
    assert.equal((await r.decide('127.0.0.1', '10.1.4.8', 'team/app', HELD)).region, 'eu-west-1a')
    await checker.close()
  })

  it('a blob a region lacks goes to the origin, and the region is asked once within the miss TTL', async () => {
    const { r, checker } = redirector()
    heads = 0
    const decisions = await Promise.all(Array.from({ length: 20 }, async () => await r.decide('10.1.4.7', undefined, 'team/app', LACKING)))
    for (const d of decisions) assert.deepEqual([d.reason, d.location], ['region-lacks', `${origin}/v2/team/app/blobs/${LACKING}`])
    await r.decide('10.1.4.7', undefined, 'team/app', LACKING)
    assert.equal(heads, 1, 'one HEAD for 21 requests')
    await checker.close()
  })

  it('a region that does not answer sends its clients to the origin within the bound, and its circuit opens', async () => {
    const { r, checker } = redirector()
    // Known to hold this blob before it went down: once its circuit is open, that no longer sends clients there.
    assert.equal((await r.decide('10.1.4.7', undefined, 'team/app', HELD)).reason, 'region')
    isDown = true
    try {
      for (let i = 0; i < 4; i++) {
        const started = Date.now()
        const d = await r.decide('10.1.4.7', undefined, 'team/app', `sha256:${String(i + 3).repeat(64)}` as Digest)
        assert.equal(d.reason, 'region-unavailable')
        assert.ok(Date.now() - started < 1000)
      }
      assert.equal((await r.decide('10.1.4.7', undefined, 'team/app', HELD)).reason, 'region-unavailable', 'a cached answer overrode the open circuit')
      const status = r.status()
      assert.deepEqual(status.hosts, ['origin.example', new URL(base).host])
      assert.equal(status.regions.find((x) => x.name === 'eu-west-1a')?.circuit, 'open')
    } finally {
      isDown = false
      await checker.close()
    }
  })
})
