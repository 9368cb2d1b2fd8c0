// Defect 8 (issue 8): the request target is parsed strictly, once, without the URL parser, so that what is
// checked is what is served: `//%` threw (500), `//anyhost/v2/...` was served as `/v2/...`, and backslashes
// sidestepped the `..` refusal.
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { parseRequestTarget } from '../../../src/http/request-target.js'
import { OciError } from '../../../src/oci/index.js'
import { parseApiPath } from '../../../src/server/api-route.js'

const D = `sha256:${'b'.repeat(64)}`

function label (target: string): string {
  return JSON.stringify(target.length > 70 ? `${target.slice(0, 70)}…` : target)
}

describe('defect 8: parseRequestTarget', () => {
  const accepted: Array<[string, { pathname: string, query: string, params?: Record<string, string> }]> = [
    ['/v2/', { pathname: '/v2/', query: '' }],
    ['/healthz', { pathname: '/healthz', query: '' }],
    ['/v2/busybox/manifests/latest', { pathname: '/v2/busybox/manifests/latest', query: '' }],
    // Percent-encoding is decoded exactly once: %252e stays %2e, which is no dot segment.
    [`/v2/a/b/manifests/${D.replace(':', '%3A')}`, { pathname: `/v2/a/b/manifests/${D}`, query: '' }],
    ['/v2/a%2Fb/tags/list', { pathname: '/v2/a/b/tags/list', query: '' }],
    ['/v2/a/%252e%252e/tags/list', { pathname: '/v2/a/%2e%2e/tags/list', query: '' }],
    // Dots inside a segment are names, not dot segments.
    ['/v2/a/..b/c.../tags/list', { pathname: '/v2/a/..b/c.../tags/list', query: '' }],
    // The query is kept as sent (passed on upstream) and parsed for `ns`.
    ['/v2/a/manifests/x?ns=ghcr.io', { pathname: '/v2/a/manifests/x', query: 'ns=ghcr.io', params: { ns: 'ghcr.io' } }],
    ['/v2/a/manifests/x?ns=', { pathname: '/v2/a/manifests/x', query: 'ns=', params: { ns: '' } }],
    ['/v2/a/tags/list?n=2&last=b&ns=docker.io', { pathname: '/v2/a/tags/list', query: 'n=2&last=b&ns=docker.io', params: { n: '2', last: 'b', ns: 'docker.io' } }],
    ['/v2/a/tags/list?ns=%ZZ', { pathname: '/v2/a/tags/list', query: 'ns=%ZZ', params: { ns: '%ZZ' } }],
    ['/v2/a/tags/list?x=/..\\', { pathname: '/v2/a/tags/list', query: 'x=/..\\', params: { x: '/..\\' } }],
    // Very long targets parse (in linear time); Node's header limit bounds them before we see them.
    [`/v2/${'a/'.repeat(50_000)}tags/list`, { pathname: `/v2/${'a/'.repeat(50_000)}tags/list`, query: '' }],
    [`/v2/x/tags/list?last=${'z'.repeat(100_000)}`, { pathname: '/v2/x/tags/list', query: `last=${'z'.repeat(100_000)}` }],
  ]
  for (const [target, expected] of accepted) {
    test(`${label(target)} is accepted`, () => {
      const t = parseRequestTarget(target)
      assert.equal(t.pathname, expected.pathname)
      assert.equal(t.rawPathname, target.split('?')[0])
      assert.equal(t.query, expected.query)
      for (const [k, v] of Object.entries(expected.params ?? {})) assert.equal(t.params.get(k), v)
    })
  }

  const refused: string[] = [
    // Not origin-form.
    '', '*', 'v2/', 'http://example.com/v2/', 'example.com:443',
    // `//` would be an authority to a URL parser: `//anyhost/v2/` was served as `/v2/`, `//%` threw.
    '//%', '//anyhost/v2/', '//anyhost/v2/busybox/manifests/latest', '///v2/',
    // Backslashes: a URL parser turns them into slashes, after our `..` check had looked at them.
    '/\\x', '/\\\\anyhost/v2/', '/v2/zzz/..\\..\\v2/busybox/manifests/latest', '/v2/a\\b/tags/list', '/v2/a%5Cb/tags/list', '/v2/a/%5c../tags/list',
    // Dot segments, plain, encoded, mixed, at either end.
    '/v2/a/../b/tags/list', '/v2/../a/manifests/latest', '/v2/a/./b/tags/list', '/v2/a/b/manifests/..', '/..', '/.',
    '/v2/a/%2e%2e/b/tags/list', '/v2/a/%2E%2E/b/tags/list', '/v2/a/.%2e/b/tags/list', '/v2/a/%2e/b/tags/list',
    '/v2/a%2F..%2Fb/tags/list', '/v2/a/..%2fb/tags/list',
    // Bad percent-encoding.
    '/v2/a/%E0%A4%A/tags/list', '/%', '/v2/%zz/tags/list', '/v2/a/%C0%AF/tags/list',
    // Control characters once decoded, and fragments.
    '/v2/a%00b/tags/list', '/v2/a%0d%0aX-Injected:%201/tags/list', '/v2/a/tags/list#frag',
    `/${'..\\'.repeat(10_000)}`,
  ]
  for (const target of refused) {
    test(`${label(target)} is refused with NAME_INVALID (400)`, () => {
      assert.throws(() => parseRequestTarget(target), (err: unknown) => {
        assert.ok(err instanceof OciError, `expected OciError, got ${String(err)}`)
        assert.equal(err.code, 'NAME_INVALID')
        assert.equal(err.status, 400)
        assert.ok(err.message.length < 300, 'the message quotes a bounded part of the target')
        return true
      })
    })
  }

  // Target and route together, as the handler uses them.
  const routed: Array<[string, Record<string, unknown>]> = [
    [`/v2/a/b/blobs/${D.replace(':', '%3a')}`, { kind: 'blob', name: 'a/b', digest: D }],
    ['/v2/a%2Fb/tags/list?ns=docker.io', { kind: 'tags', name: 'a/b' }],
    ['/v2/127.0.0.1:5001/foo/tags/list', { kind: 'tags', name: '127.0.0.1:5001/foo' }],
  ]
  for (const [target, route] of routed) {
    test(`${label(target)} routes to ${JSON.stringify(route)}`, () => assert.deepEqual(parseApiPath(parseRequestTarget(target).pathname), route))
  }
  test('a path outside the API is NAME_UNKNOWN (404), a spec code', () => {
    assert.throws(() => parseApiPath(parseRequestTarget('/elsewhere').pathname), (err: unknown) => err instanceof OciError && err.code === 'NAME_UNKNOWN' && err.status === 404)
  })
})
