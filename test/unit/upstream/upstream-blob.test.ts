import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { buffer } from 'node:stream/consumers'
import type { ServerResponse } from 'node:http'
import { after, before, describe, test } from 'node:test'
import { parseDigest } from '../../../src/oci/index.js'
import { UpstreamError } from '../../../src/upstream/upstream-error.js'
import type { UndiciUpstream } from '../../../src/upstream/undici-upstream.js'
import { startServer, type LocalServer } from './local-server.js'
import { newTestUpstream } from './new-test-upstream.js'

const BLOB = Buffer.from(Array.from({ length: 256 * 1024 }, (_, i) => i % 251))
const DIGEST = parseDigest(`sha256:${createHash('sha256').update(BLOB).digest('hex')}`).digest

/** Serves BLOB, honouring `Range: bytes=N-` unless told not to. */
function sendBlob (rangeHeader: string | undefined, res: ServerResponse, honourRange: boolean): void {
  const start = honourRange && rangeHeader !== undefined ? Number(/^bytes=(\d+)-$/.exec(rangeHeader)?.[1]) : 0
  if (start === 0) return void res.writeHead(200, { 'content-length': BLOB.byteLength }).end(BLOB)
  res.writeHead(206, {
    'content-length': BLOB.byteLength - start,
    'content-range': `bytes ${start}-${BLOB.byteLength - 1}/${BLOB.byteLength}`,
  }).end(BLOB.subarray(start))
}

void describe('UndiciUpstream blobs', { timeout: 10_000 }, () => {
  let tokens: LocalServer
  let storage: LocalServer
  let registry: LocalServer
  let upstream: UndiciUpstream

  before(async () => {
    tokens = await startServer((_req, res) => void res.end('{"token":"registry-token"}'))
    storage = await startServer((req, res) => sendBlob(req.headers.range, res, true))
    registry = await startServer((req, res) => {
      const url = req.url ?? ''
      if (url.startsWith('/v2/private/')) {
        if (req.headers.authorization !== 'Bearer registry-token') {
          return void res.writeHead(401, { 'www-authenticate': `Bearer realm="${tokens.url}/token",service="s"` }).end()
        }
        return void res.writeHead(307, { location: `${storage.url}/blobs/${DIGEST}?X-Amz-Signature=abc` }).end()
      }
      if (url.startsWith('/v2/ranged/')) return sendBlob(req.headers.range, res, true)
      if (url.startsWith('/v2/no-range/')) return sendBlob(req.headers.range, res, false)
      if (url.startsWith('/v2/wrong-range/')) {
        return void res.writeHead(206, { 'content-range': `bytes 0-9/${BLOB.byteLength}` }).end(BLOB.subarray(0, 10))
      }
      if (url.startsWith('/v2/loop/')) return void res.writeHead(302, { location: url }).end()
      res.writeHead(404).end()
    })
    upstream = newTestUpstream([registry.url])
  })
  after(async () => {
    await upstream.close()
    await Promise.all([tokens.close(), storage.close(), registry.close()])
  })

  void test('whole blob: 200 with length and total size, no Range sent', async () => {
    const blob = await upstream.getBlob(registry.host, 'ranged', DIGEST)
    assert.equal(blob.status, 200)
    assert.equal(blob.length, BLOB.byteLength)
    assert.equal(blob.totalSize, BLOB.byteLength)
    assert.deepEqual(await buffer(blob.body), BLOB)
    assert.equal(registry.requests.at(-1)?.headers.range, undefined)
  })

  void test('follows a redirect to another origin without the registry Authorization header', async () => {
    const before = storage.requests.length
    const blob = await upstream.getBlob(registry.host, 'private', DIGEST)
    assert.deepEqual(await buffer(blob.body), BLOB)
    const toStorage = storage.requests.slice(before)
    assert.equal(toStorage.length, 1)
    assert.equal(toStorage[0]?.url, `/blobs/${DIGEST}?X-Amz-Signature=abc`)
    assert.equal(toStorage[0]?.headers.authorization, undefined)
    assert.equal(registry.requests.at(-1)?.headers.authorization, 'Bearer registry-token')
  })

  void test('Range from an offset is kept across the redirect', async () => {
    const blob = await upstream.getBlob(registry.host, 'private', DIGEST, 1000)
    assert.equal(storage.requests.at(-1)?.headers.range, 'bytes=1000-')
    assert.equal(blob.status, 206)
    assert.deepEqual(await buffer(blob.body), BLOB.subarray(1000))
  })

  void test('Range from an offset: 206 with the range length and the total size', async () => {
    const blob = await upstream.getBlob(registry.host, 'ranged', DIGEST, 100_000)
    assert.equal(registry.requests.at(-1)?.headers.range, 'bytes=100000-')
    assert.equal(blob.status, 206)
    assert.equal(blob.length, BLOB.byteLength - 100_000)
    assert.equal(blob.totalSize, BLOB.byteLength)
    assert.deepEqual(await buffer(blob.body), BLOB.subarray(100_000))
  })

  void test('an upstream that ignores Range and answers 200: the offset bytes are skipped for the caller', async () => {
    const blob = await upstream.getBlob(registry.host, 'no-range', DIGEST, 100_001)
    assert.equal(registry.requests.at(-1)?.headers.range, 'bytes=100001-')
    assert.equal(blob.status, 206)
    assert.equal(blob.length, BLOB.byteLength - 100_001)
    assert.equal(blob.totalSize, BLOB.byteLength)
    assert.deepEqual(await buffer(blob.body), BLOB.subarray(100_001))
  })

  void test('a 206 for another range than asked is ERR_UPSTREAM_INVALID_RESPONSE', async () => {
    await assert.rejects(upstream.getBlob(registry.host, 'wrong-range', DIGEST, 5),
      (err: unknown) => err instanceof UpstreamError && err.code === 'ERR_UPSTREAM_INVALID_RESPONSE')
  })

  void test('stops after 5 redirects', async () => {
    const before = registry.requests.length
    await assert.rejects(upstream.getBlob(registry.host, 'loop', DIGEST),
      (err: unknown) => err instanceof UpstreamError && err.code === 'ERR_UPSTREAM_STATUS' && err.status === 302)
    assert.equal(registry.requests.length - before, 6)
  })

  void test('a missing blob is ERR_UPSTREAM_NOT_FOUND', async () => {
    await assert.rejects(upstream.getBlob(registry.host, 'absent', DIGEST),
      (err: unknown) => err instanceof UpstreamError && err.code === 'ERR_UPSTREAM_NOT_FOUND')
  })
})
