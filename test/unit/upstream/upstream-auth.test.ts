import { createHash } from 'node:crypto'
import assert from 'node:assert/strict'
import type { ServerResponse } from 'node:http'
import { after, before, describe, test } from 'node:test'
import { MediaType } from '../../../src/oci/index.js'
import { DockerCredentials } from '../../../src/upstream/docker-credentials.js'
import { UpstreamError } from '../../../src/upstream/upstream-error.js'
import { startServer, type LocalServer } from './local-server.js'
import { newTestUpstream } from './new-test-upstream.js'

const MANIFEST = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [] }))
const MANIFEST_DIGEST = `sha256:${createHash('sha256').update(MANIFEST).digest('hex')}`
const basic = (user: string, pass: string): string => `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`

function serveManifest (res: ServerResponse): void {
  res.writeHead(200, { 'content-type': MediaType.OciIndex, 'content-length': MANIFEST.byteLength, 'docker-content-digest': MANIFEST_DIGEST })
  res.end(MANIFEST)
}

void describe('UndiciUpstream auth: Bearer', { timeout: 10_000 }, () => {
  let tokens: LocalServer
  let registry: LocalServer
  let issued = 0

  before(async () => {
    tokens = await startServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://x')
      // Slow enough that concurrent challengers overlap with the fetch in flight.
      setTimeout(() => {
        issued++
        res.writeHead(200, { 'content-type': 'application/json' })
        res.end(JSON.stringify({ token: `tok-${issued}`, expires_in: 300, scope: url.searchParams.getAll('scope') }))
      }, 20)
    })
    registry = await startServer((req, res) => {
      const repo = /^\/v2\/(.+)\/manifests\//.exec(req.url ?? '')?.[1] ?? ''
      if (req.headers.authorization?.startsWith('Bearer tok-') !== true) {
        res.writeHead(401, {
          'www-authenticate': `Bearer realm="${tokens.url}/token",service="test-registry",scope="repository:${repo}:pull"`,
          'content-type': 'application/json',
        }).end('{"errors":[{"code":"UNAUTHORIZED"}]}')
        return
      }
      serveManifest(res)
    })
  })
  after(async () => { await Promise.all([tokens.close(), registry.close()]) })

  void test('fetches a token once for the challenge, then sends it preemptively', async () => {
    const upstream = newTestUpstream([registry.url])
    try {
      const tokensBefore = tokens.requests.length
      const hitsBefore = registry.requests.length
      const first = await upstream.getManifest(registry.host, 'library/alpine', 'latest', MediaType.OciIndex)
      const second = await upstream.getManifest(registry.host, 'library/alpine', 'latest', MediaType.OciIndex)
      assert.deepEqual(first.bytes, MANIFEST)
      assert.deepEqual(second.bytes, MANIFEST)
      assert.equal(tokens.requests.length - tokensBefore, 1, 'token endpoint hit once')
      assert.equal(registry.requests.length - hitsBefore, 3, '401, retry with token, then straight in')
      const tokenRequest = new URL(tokens.requests.at(-1)?.url ?? '', 'http://x')
      assert.equal(tokenRequest.searchParams.get('service'), 'test-registry')
      assert.deepEqual(tokenRequest.searchParams.getAll('scope'), ['repository:library/alpine:pull'])
      assert.equal(tokens.requests.at(-1)?.headers.authorization, undefined, 'anonymous without credentials')
      assert.match(registry.requests.at(-1)?.headers.authorization ?? '', /^Bearer tok-\d+$/)
    } finally {
      await upstream.close()
    }
  })

  void test('concurrent requests that are challenged together share one token fetch', async () => {
    const upstream = newTestUpstream([registry.url])
    try {
      const tokensBefore = tokens.requests.length
      const results = await Promise.all([1, 2, 3].map(async () =>
        await upstream.getManifest(registry.host, 'library/busybox', 'latest', MediaType.OciIndex)))
      assert.equal(results.length, 3)
      assert.equal(tokens.requests.length - tokensBefore, 1)
    } finally {
      await upstream.close()
    }
  })

  void test('sends Basic credentials to the token realm when it has them', async () => {
    const credentials = new DockerCredentials([[registry.host, { username: 'alice', password: 's3cret' }]])
    const upstream = newTestUpstream([registry.url], { credentials })
    try {
      await upstream.getManifest(registry.host, 'team/app', 'v1', MediaType.OciIndex)
      assert.equal(tokens.requests.at(-1)?.headers.authorization, basic('alice', 's3cret'))
      assert.ok(registry.requests.every((r) => r.headers.authorization?.startsWith('Basic') !== true), 'the registry never sees the password')
    } finally {
      await upstream.close()
    }
  })
})

void describe('UndiciUpstream auth: Basic and refusals', { timeout: 10_000 }, () => {
  let registry: LocalServer
  before(async () => {
    registry = await startServer((req, res) => {
      if (req.url?.includes('/always-401/') === true) {
        res.writeHead(401, { 'www-authenticate': 'Basic realm="test"' }).end()
        return
      }
      if (req.headers.authorization !== basic('bob', 'pw')) {
        res.writeHead(401, { 'www-authenticate': 'Basic realm="test"' }).end('denied')
        return
      }
      serveManifest(res)
    })
  })
  after(async () => { await registry.close() })

  void test('answers a Basic challenge, then sends Basic preemptively', async () => {
    const credentials = new DockerCredentials([[registry.host, { username: 'bob', password: 'pw' }]])
    const upstream = newTestUpstream([registry.url], { credentials })
    try {
      const before = registry.requests.length
      await upstream.getManifest(registry.host, 'a/b', 'latest', MediaType.OciIndex)
      assert.equal(registry.requests.length - before, 2)
      await upstream.headManifest(registry.host, 'a/b', 'latest', MediaType.OciIndex)
      assert.equal(registry.requests.length - before, 3, 'no second 401')
    } finally {
      await upstream.close()
    }
  })

  void test('without credentials a Basic challenge is ERR_UPSTREAM_UNAUTHORIZED, asked once', async () => {
    const upstream = newTestUpstream([registry.url])
    try {
      const before = registry.requests.length
      await assert.rejects(upstream.getManifest(registry.host, 'a/b', 'latest', MediaType.OciIndex),
        (err: unknown) => err instanceof UpstreamError && err.code === 'ERR_UPSTREAM_UNAUTHORIZED' && err.status === 401)
      assert.equal(registry.requests.length - before, 1)
    } finally {
      await upstream.close()
    }
  })

  void test('credentials refused: ERR_UPSTREAM_UNAUTHORIZED after one answered challenge, not retried', async () => {
    const credentials = new DockerCredentials([[registry.host, { username: 'bob', password: 'pw' }]])
    const upstream = newTestUpstream([registry.url], { credentials })
    try {
      const before = registry.requests.length
      await assert.rejects(upstream.getManifest(registry.host, 'always-401/x', 'latest', MediaType.OciIndex),
        (err: unknown) => err instanceof UpstreamError && err.code === 'ERR_UPSTREAM_UNAUTHORIZED')
      assert.equal(registry.requests.length - before, 2)
    } finally {
      await upstream.close()
    }
  })
})
