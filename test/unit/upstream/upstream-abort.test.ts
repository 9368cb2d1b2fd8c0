import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { pino } from 'pino'
import { MediaType, parseDigest } from '../../../src/oci/index.js'
import { startServer, type LocalServer } from './local-server.js'
import { newTestUpstream } from './new-test-upstream.js'

const ANY_DIGEST = parseDigest(`sha256:${'0'.repeat(64)}`).digest

const isAbort = (err: unknown): boolean => {
  assert.equal((err as Error).name, 'AbortError', String(err))
  return true
}

void describe('UndiciUpstream abort', { timeout: 10_000 }, () => {
  let registry: LocalServer
  /** Resolved by the server as each request arrives, so tests abort at a known point without sleeping. */
  let arrived: () => void = () => {}
  before(async () => {
    registry = await startServer((req, res) => {
      arrived()
      if (req.url?.startsWith('/v2/hang/') === true) return // never answers
      if (req.url?.startsWith('/v2/slow-blob/') === true) {
        res.writeHead(200, { 'content-length': 1024 * 1024 })
        return void res.write(Buffer.alloc(1024)) // and the rest never comes
      }
      res.writeHead(503, { 'retry-after': '30' }).end()
    })
  })
  after(async () => { await registry.close() })

  const nextArrival = async (): Promise<void> => await new Promise<void>((resolve) => { arrived = resolve })

  void test('aborting while waiting for the upstream rejects at once with the abort reason', async () => {
    const upstream = newTestUpstream([registry.url])
    try {
      const controller = new AbortController()
      const arrival = nextArrival()
      const pending = upstream.getManifest(registry.host, 'hang', 'latest', MediaType.OciManifest, controller.signal)
      await arrival
      controller.abort()
      await assert.rejects(pending, isAbort)
    } finally {
      await upstream.close()
    }
  })

  void test('aborting during the backoff before a retry stops it', async () => {
    const controller = new AbortController()
    // The retry is logged just before the backoff sleep starts: abort right after, while it sleeps.
    const logger = pino({ level: 'debug' }, {
      write: (line: string) => { if (line.includes('retrying upstream request')) setImmediate(() => controller.abort()) },
    })
    const upstream = newTestUpstream([registry.url], { logger, maxRetryAfterMs: 30_000, retries: 3 })
    try {
      const before = registry.requests.length
      const started = performance.now()
      await assert.rejects(upstream.getManifest(registry.host, 'busy', 'latest', MediaType.OciManifest, controller.signal), isAbort)
      assert.ok(performance.now() - started < 5000, 'did not sit out the 30 s Retry-After')
      assert.equal(registry.requests.length - before, 1)
    } finally {
      await upstream.close()
    }
  })

  void test('an already aborted signal sends nothing', async () => {
    const upstream = newTestUpstream([registry.url])
    try {
      const before = registry.requests.length
      await assert.rejects(upstream.getBlob(registry.host, 'busy', ANY_DIGEST, 0, AbortSignal.abort()), isAbort)
      assert.equal(registry.requests.length, before)
    } finally {
      await upstream.close()
    }
  })

  void test('aborting while a blob streams errors the stream', async () => {
    const upstream = newTestUpstream([registry.url])
    try {
      const controller = new AbortController()
      const blob = await upstream.getBlob(registry.host, 'slow-blob', ANY_DIGEST, 0, controller.signal)
      assert.equal(blob.length, 1024 * 1024)
      const reading = (async () => { for await (const _chunk of blob.body) controller.abort() })()
      await assert.rejects(reading, isAbort)
    } finally {
      await upstream.close()
    }
  })
})
