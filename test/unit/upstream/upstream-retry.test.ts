import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { MediaType } from '../../../src/oci/index.js'
import { UpstreamError } from '../../../src/upstream/upstream-error.js'
import { closedPort, startServer, type LocalServer } from './local-server.js'
import { newTestUpstream } from './new-test-upstream.js'

const BODY = Buffer.from('{"schemaVersion":2}')

const isCode = (code: string, status?: number) => (err: unknown): boolean => {
  assert.ok(err instanceof UpstreamError, String(err))
  assert.equal(err.code, code, err.message)
  if (status !== undefined) assert.equal(err.status, status)
  return true
}

/** Per repository, how many times it has been asked for: each test uses its own repository. */
const hitsOf = (server: LocalServer, repo: string): number => server.requests.filter((r) => r.url.startsWith(`/v2/${repo}/`)).length

void describe('UndiciUpstream retries', { timeout: 10_000 }, () => {
  let registry: LocalServer
  before(async () => {
    registry = await startServer((req, res) => {
      const url = req.url ?? ''
      const nth = hitsOf(registry, url.split('/')[2] ?? '')
      const ok = (): void => void res.writeHead(200, { 'content-type': MediaType.OciManifest }).end(BODY)
      if (url.startsWith('/v2/flaky/')) return nth === 1 ? void res.writeHead(503).end('busy') : ok()
      if (url.startsWith('/v2/down/')) return void res.writeHead(503).end()
      if (url.startsWith('/v2/limited/')) return nth === 1 ? void res.writeHead(429, { 'retry-after': '1' }).end() : ok()
      if (url.startsWith('/v2/always-limited/')) return void res.writeHead(429, { 'retry-after': '0' }).end()
      if (url.startsWith('/v2/forbidden/')) return void res.writeHead(403).end()
      if (url.startsWith('/v2/teapot/')) return void res.writeHead(418).end()
      if (url.startsWith('/v2/hang/')) return // never answers
      if (url.startsWith('/v2/reset/')) return nth === 1 ? void res.socket?.destroy() : ok()
      res.writeHead(404).end()
    })
  })
  after(async () => { await registry.close() })

  void test('retries a 503 and succeeds on the second attempt', async () => {
    const upstream = newTestUpstream([registry.url])
    try {
      const m = await upstream.getManifest(registry.host, 'flaky', 'latest', MediaType.OciManifest)
      assert.deepEqual(m.bytes, BODY)
      assert.equal(hitsOf(registry, 'flaky'), 2)
    } finally {
      await upstream.close()
    }
  })

  void test('a connection reset before any byte is retried', async () => {
    const upstream = newTestUpstream([registry.url])
    try {
      await upstream.getManifest(registry.host, 'reset', 'latest', MediaType.OciManifest)
      assert.equal(hitsOf(registry, 'reset'), 2)
    } finally {
      await upstream.close()
    }
  })

  void test('gives up after `retries` further attempts with ERR_UPSTREAM_STATUS 503', async () => {
    const upstream = newTestUpstream([registry.url], { retries: 2 })
    try {
      await assert.rejects(upstream.getManifest(registry.host, 'down', 'latest', MediaType.OciManifest), isCode('ERR_UPSTREAM_STATUS', 503))
      assert.equal(hitsOf(registry, 'down'), 3)
    } finally {
      await upstream.close()
    }
  })

  void test('honours Retry-After, capped by maxRetryAfterMs', async () => {
    // Retry-After says 1 s; the cap is 300 ms; backoff alone would be ~1 ms.
    const upstream = newTestUpstream([registry.url], { maxRetryAfterMs: 300 })
    try {
      const started = performance.now()
      await upstream.getManifest(registry.host, 'limited', 'latest', MediaType.OciManifest)
      const elapsed = performance.now() - started
      assert.equal(hitsOf(registry, 'limited'), 2)
      assert.ok(elapsed >= 290, `waited ${elapsed} ms, less than the capped Retry-After`)
      assert.ok(elapsed < 1000, `waited ${elapsed} ms: the cap was not applied`)
    } finally {
      await upstream.close()
    }
  })

  void test('429 after all retries is ERR_UPSTREAM_TOO_MANY_REQUESTS', async () => {
    const upstream = newTestUpstream([registry.url], { retries: 1 })
    try {
      await assert.rejects(upstream.getManifest(registry.host, 'always-limited', 'x', MediaType.OciManifest), isCode('ERR_UPSTREAM_TOO_MANY_REQUESTS', 429))
      assert.equal(hitsOf(registry, 'always-limited'), 2)
    } finally {
      await upstream.close()
    }
  })

  void test('404, 403 and other 4xx are not retried', async () => {
    const upstream = newTestUpstream([registry.url], { retries: 3 })
    try {
      await assert.rejects(upstream.getManifest(registry.host, 'missing', 'latest', MediaType.OciManifest), isCode('ERR_UPSTREAM_NOT_FOUND', 404))
      await assert.rejects(upstream.getManifest(registry.host, 'forbidden', 'latest', MediaType.OciManifest), isCode('ERR_UPSTREAM_DENIED', 403))
      await assert.rejects(upstream.getManifest(registry.host, 'teapot', 'latest', MediaType.OciManifest), isCode('ERR_UPSTREAM_STATUS', 418))
      assert.equal(hitsOf(registry, 'missing'), 1)
      assert.equal(hitsOf(registry, 'forbidden'), 1)
      assert.equal(hitsOf(registry, 'teapot'), 1)
    } finally {
      await upstream.close()
    }
  })

  void test('no answer within headersTimeoutMs is ERR_UPSTREAM_TIMEOUT', async () => {
    const upstream = newTestUpstream([registry.url], { headersTimeoutMs: 100, retries: 1 })
    try {
      await assert.rejects(upstream.getManifest(registry.host, 'hang', 'latest', MediaType.OciManifest), isCode('ERR_UPSTREAM_TIMEOUT'))
      assert.equal(hitsOf(registry, 'hang'), 2, 'timeouts are retried')
    } finally {
      await upstream.close()
    }
  })

  void test('connection refused is ERR_UPSTREAM_UNAVAILABLE at once: nothing listens, so no backoff and no retry', async () => {
    const port = await closedPort()
    const upstream = newTestUpstream([`http://127.0.0.1:${port}`], { retries: 3, retryBaseMs: 10_000 })
    try {
      const started = Date.now()
      await assert.rejects(upstream.getManifest(`127.0.0.1:${port}`, 'a', 'latest', MediaType.OciManifest), (err: unknown) => {
        isCode('ERR_UPSTREAM_UNAVAILABLE')(err)
        assert.equal((err as UpstreamError).isUnavailable, true)
        assert.match((err as UpstreamError).message, /ECONNREFUSED/)
        return true
      })
      // One backoff would be 5–10 s.
      assert.ok(Date.now() - started < 4000, `rejected after ${Date.now() - started} ms`)
      // Still counted: the registry's status shows the failure.
      assert.match(upstream.status().find((s) => s.registry === `127.0.0.1:${port}`)?.lastError ?? '', /ECONNREFUSED/)
    } finally {
      await upstream.close()
    }
  })
})
