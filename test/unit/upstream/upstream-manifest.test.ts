import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { after, before, describe, test } from 'node:test'
import { accepts, MAX_MANIFEST_BYTES, MediaType } from '../../../src/oci/index.js'
import { UpstreamError } from '../../../src/upstream/upstream-error.js'
import type { UndiciUpstream } from '../../../src/upstream/undici-upstream.js'
import { startServer, type LocalServer } from './local-server.js'
import { newTestUpstream } from './new-test-upstream.js'

const sha256 = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`
const INDEX = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [] }))
const OTHER = Buffer.from('{"schemaVersion":2,"other":true}')

const isCode = (code: string) => (err: unknown): boolean => {
  assert.ok(err instanceof UpstreamError, String(err))
  assert.equal(err.code, code, err.message)
  return true
}

void describe('UndiciUpstream manifests', { timeout: 10_000 }, () => {
  let registry: LocalServer
  let upstream: UndiciUpstream

  before(async () => {
    registry = await startServer((req, res) => {
      const path = req.url ?? ''
      if (path === '/v2/lib/index/manifests/latest' || path === `/v2/lib/index/manifests/${sha256(INDEX)}`) {
        // Like Distribution: an index is only served to clients that accept one.
        if (!accepts(req.headers.accept, MediaType.OciIndex)) return void res.writeHead(404).end('{"errors":[]}')
        return void res.writeHead(200, {
          'content-type': `${MediaType.OciIndex}; charset=utf-8`,
          'docker-content-digest': sha256(INDEX),
          'content-length': INDEX.byteLength,
          etag: '"abc"',
        }).end(INDEX)
      }
      if (path === '/v2/lib/no-digest/manifests/latest') {
        return void res.writeHead(200, { 'content-type': MediaType.OciIndex }).end(INDEX)
      }
      if (path === `/v2/lib/liar/manifests/${sha256(INDEX)}`) {
        return void res.writeHead(200, { 'content-type': MediaType.OciIndex }).end(OTHER)
      }
      if (path === '/v2/lib/liar/manifests/latest') {
        return void res.writeHead(200, { 'content-type': MediaType.OciIndex, 'docker-content-digest': sha256(INDEX) }).end(OTHER)
      }
      if (path === '/v2/lib/huge/manifests/latest') {
        return void res.writeHead(200, { 'content-type': MediaType.OciManifest }).end(Buffer.alloc(MAX_MANIFEST_BYTES + 1, 0x20))
      }
      if (path === '/v2/lib/huge-chunked/manifests/latest') {
        // No Content-Length: the limit must hold while streaming.
        res.writeHead(200, { 'content-type': MediaType.OciManifest })
        for (let i = 0; i < 5; i++) res.write(Buffer.alloc(1024 * 1024, 0x20))
        return void res.end()
      }
      res.writeHead(404).end()
    })
    upstream = newTestUpstream([registry.url])
  })
  after(async () => {
    await upstream.close()
    await registry.close()
  })

  void test('forwards Accept faithfully; the media type loses its parameters', async () => {
    const accept = `${MediaType.OciIndex}, ${MediaType.OciManifest};q=0.9`
    const m = await upstream.getManifest(registry.host, 'lib/index', 'latest', accept)
    assert.equal(registry.requests.at(-1)?.headers.accept, accept)
    assert.equal(m.mediaType, MediaType.OciIndex)
    assert.equal(m.digest, sha256(INDEX))
    assert.equal(m.size, INDEX.byteLength)
    assert.equal(m.etag, '"abc"')
    assert.deepEqual(m.bytes, INDEX)
  })

  void test('an Accept that excludes the index gets the upstream 404, not retried', async () => {
    const before = registry.requests.length
    await assert.rejects(upstream.getManifest(registry.host, 'lib/index', 'latest', MediaType.OciManifest), isCode('ERR_UPSTREAM_NOT_FOUND'))
    assert.equal(registry.requests.length - before, 1)
  })

  void test('headManifest answers from the HEAD headers alone', async () => {
    const before = registry.requests.length
    const head = await upstream.headManifest(registry.host, 'lib/index', 'latest', MediaType.OciIndex)
    assert.deepEqual(head, { digest: sha256(INDEX), mediaType: MediaType.OciIndex, size: INDEX.byteLength, etag: '"abc"' })
    assert.deepEqual(registry.requests.slice(before).map((r) => r.method), ['HEAD'])
  })

  void test('headManifest falls back to GET and hashes the body when HEAD lacks Docker-Content-Digest', async () => {
    const before = registry.requests.length
    const head = await upstream.headManifest(registry.host, 'lib/no-digest', 'latest', MediaType.OciIndex)
    assert.deepEqual(head, { digest: sha256(INDEX), mediaType: MediaType.OciIndex, size: INDEX.byteLength })
    assert.deepEqual(registry.requests.slice(before).map((r) => r.method), ['HEAD', 'GET'])
  })

  void test('a body that does not hash to the requested digest is ERR_UPSTREAM_INVALID_RESPONSE', async () => {
    await assert.rejects(upstream.getManifest(registry.host, 'lib/liar', sha256(INDEX), MediaType.OciIndex), isCode('ERR_UPSTREAM_INVALID_RESPONSE'))
  })

  void test('a body that does not match its Docker-Content-Digest is ERR_UPSTREAM_INVALID_RESPONSE', async () => {
    await assert.rejects(upstream.getManifest(registry.host, 'lib/liar', 'latest', MediaType.OciIndex), isCode('ERR_UPSTREAM_INVALID_RESPONSE'))
  })

  void test('a manifest over 4 MiB is refused, whether announced by Content-Length or not', async () => {
    await assert.rejects(upstream.getManifest(registry.host, 'lib/huge', 'latest', MediaType.OciManifest), isCode('ERR_UPSTREAM_INVALID_RESPONSE'))
    await assert.rejects(upstream.getManifest(registry.host, 'lib/huge-chunked', 'latest', MediaType.OciManifest), isCode('ERR_UPSTREAM_INVALID_RESPONSE'))
  })

  void test('an unknown registry is ERR_UPSTREAM_UNKNOWN_REGISTRY', async () => {
    assert.equal(upstream.has(registry.host), true)
    assert.equal(upstream.has('ghcr.io'), false)
    await assert.rejects(upstream.getManifest('ghcr.io', 'a/b', 'latest', MediaType.OciIndex), isCode('ERR_UPSTREAM_UNKNOWN_REGISTRY'))
  })
})
