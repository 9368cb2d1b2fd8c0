import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { UpstreamError } from '../../../src/upstream/upstream-error.js'
import type { UndiciUpstream } from '../../../src/upstream/undici-upstream.js'
import { startServer, type LocalServer } from './local-server.js'
import { newTestUpstream } from './new-test-upstream.js'

const TAGS = Buffer.from('{"name":"lib/app","tags":["a","b"]}')

void describe('UndiciUpstream passThrough', { timeout: 10_000 }, () => {
  let registry: LocalServer
  let upstream: UndiciUpstream
  before(async () => {
    registry = await startServer((req, res) => {
      if (req.url?.startsWith('/v2/lib/app/tags/list') === true) {
        return void res.writeHead(200, {
          'content-type': 'application/json',
          link: '</v2/lib/app/tags/list?n=2&last=b>; rel="next"',
          'x-internal': 'not forwarded',
        }).end(TAGS)
      }
      if (req.url?.startsWith('/v2/lib/app/referrers/') === true) {
        return void res.writeHead(200, { 'content-type': 'application/vnd.oci.image.index.v1+json', 'oci-filters-applied': 'artifactType' }).end('{}')
      }
      res.writeHead(404).end()
    })
    upstream = newTestUpstream([registry.url])
  })
  after(async () => {
    await upstream.close()
    await registry.close()
  })

  void test('forwards path and query, returns status, the selected headers and the body', async () => {
    const r = await upstream.passThrough(registry.host, 'lib/app', 'tags/list', 'n=2&last=a', 'application/json')
    assert.equal(registry.requests.at(-1)?.url, '/v2/lib/app/tags/list?n=2&last=a')
    assert.equal(registry.requests.at(-1)?.headers.accept, 'application/json')
    assert.equal(r.status, 200)
    assert.deepEqual(r.headers, { 'content-type': 'application/json', link: '</v2/lib/app/tags/list?n=2&last=b>; rel="next"' })
    assert.deepEqual(r.body, TAGS)
  })

  void test('a leading ? and no Accept are fine', async () => {
    const digest = `sha256:${'1'.repeat(64)}`
    const r = await upstream.passThrough(registry.host, 'lib/app', `referrers/${digest}`, '?artifactType=x', undefined)
    assert.equal(registry.requests.at(-1)?.url, `/v2/lib/app/referrers/${digest}?artifactType=x`)
    assert.equal(registry.requests.at(-1)?.headers.accept, undefined)
    assert.equal(r.headers['oci-filters-applied'], 'artifactType')
  })

  void test('an upstream 404 is ERR_UPSTREAM_NOT_FOUND', async () => {
    await assert.rejects(upstream.passThrough(registry.host, 'lib/none', 'tags/list', '', undefined),
      (err: unknown) => err instanceof UpstreamError && err.code === 'ERR_UPSTREAM_NOT_FOUND')
  })
})
