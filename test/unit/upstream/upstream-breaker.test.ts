import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { MediaType, parseDigest } from '../../../src/oci/index.js'
import { UpstreamError } from '../../../src/upstream/upstream-error.js'
import { startServer, type LocalServer } from './local-server.js'
import { newTestUpstream } from './new-test-upstream.js'

const isCode = (code: string) => (err: unknown): boolean => {
  assert.ok(err instanceof UpstreamError, String(err))
  assert.equal(err.code, code, err.message)
  return true
}

void describe('UndiciUpstream circuit breaker', { timeout: 10_000 }, () => {
  let registry: LocalServer
  let status = 503
  before(async () => {
    registry = await startServer((req, res) => {
      if (req.url?.startsWith('/v2/missing/') === true) return void res.writeHead(404).end()
      res.writeHead(status, { 'content-type': MediaType.OciManifest }).end('{}')
    })
  })
  after(async () => { await registry.close() })

  void test('opens after consecutive failures, fails fast without a request, and closes after a good trial', async () => {
    let now = 0
    status = 503
    const upstream = newTestUpstream([registry.url], { retries: 0, breaker: { failureThreshold: 2, openMs: 1000, now: () => now } })
    try {
      const before = registry.requests.length
      for (let i = 0; i < 2; i++) {
        await assert.rejects(upstream.getManifest(registry.host, 'app', 'latest', MediaType.OciManifest), isCode('ERR_UPSTREAM_STATUS'))
      }
      assert.equal(registry.requests.length - before, 2)

      await assert.rejects(upstream.getManifest(registry.host, 'app', 'latest', MediaType.OciManifest), (err: unknown) =>
        isCode('ERR_UPSTREAM_CIRCUIT_OPEN')(err) && (err as UpstreamError).isUnavailable)
      await assert.rejects(upstream.getBlob(registry.host, 'app', parseDigest(`sha256:${'a'.repeat(64)}`).digest), isCode('ERR_UPSTREAM_CIRCUIT_OPEN'))
      assert.equal(registry.requests.length - before, 2, 'no request while open')

      now += 1000
      status = 200
      await upstream.getManifest(registry.host, 'app', 'latest', MediaType.OciManifest)
      await upstream.getManifest(registry.host, 'app', 'latest', MediaType.OciManifest)
      assert.equal(registry.requests.length - before, 4, 'the trial succeeded and the circuit closed')
    } finally {
      await upstream.close()
    }
  })

  void test('retries count towards the threshold; the retry loop stops when the circuit opens', async () => {
    status = 503
    const upstream = newTestUpstream([registry.url], { retries: 5, breaker: { failureThreshold: 3, openMs: 60_000 } })
    try {
      const before = registry.requests.length
      // The last real failure is reported, not the open circuit that stopped the retries.
      await assert.rejects(upstream.getManifest(registry.host, 'app', 'latest', MediaType.OciManifest), isCode('ERR_UPSTREAM_STATUS'))
      assert.equal(registry.requests.length - before, 3)
    } finally {
      await upstream.close()
    }
  })

  void test('status(): each registry with its endpoint, circuit state, last error and when', async () => {
    const now = Date.parse('2026-05-01T12:00:00.000Z')
    status = 503
    const upstream = newTestUpstream([registry.url, 'https://other.example.com/mirror/'], { retries: 0, breaker: { failureThreshold: 1, openMs: 1000, now: () => now } })
    try {
      assert.deepEqual(upstream.status().map((s) => [s.registry, s.circuit, s.lastError]), [[registry.host, 'closed', null], ['other.example.com', 'closed', null]])
      await assert.rejects(upstream.getManifest(registry.host, 'app', 'latest', MediaType.OciManifest), isCode('ERR_UPSTREAM_STATUS'))
      const [mine, other] = upstream.status()
      assert.equal(mine?.circuit, 'open')
      assert.match(mine?.lastError ?? '', /503/)
      assert.equal(mine?.lastErrorAt, '2026-05-01T12:00:00.000Z')
      assert.equal(mine?.endpoint, registry.url.replace(/\/$/, ''))
      assert.equal(other?.endpoint, 'https://other.example.com/mirror')
    } finally {
      await upstream.close()
    }
  })

  void test('404s do not open the circuit', async () => {
    const upstream = newTestUpstream([registry.url], { breaker: { failureThreshold: 2 } })
    try {
      const before = registry.requests.length
      for (let i = 0; i < 4; i++) {
        await assert.rejects(upstream.getManifest(registry.host, 'missing', 'latest', MediaType.OciManifest), isCode('ERR_UPSTREAM_NOT_FOUND'))
      }
      assert.equal(registry.requests.length - before, 4)
    } finally {
      await upstream.close()
    }
  })
})
