// Defect 8 (issue 8) at the handler: raw targets that threw in the URL parser (500), were served from
// another path (`//anyhost/v2/...`) or slipped past the `..` refusal (backslashes) get a 400/404 OCI body.
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import type { Upstream } from '../../../src/upstream/upstream.js'
import { blobOnlyUpstream } from '../../helpers/blob-only-upstream.js'
import { ociCode, rawRequest } from './raw-request.js'
import { startHandlerServer, type HandlerServer } from './handler-server.js'

/** An upstream with one tag list for every repository: what a request that slipped through would get. */
function listingUpstream (): Upstream {
  return {
    ...blobOnlyUpstream(async () => { throw new Error('not used in this test') }),
    passThrough: async (_registry, repository) => ({ status: 200, headers: { 'content-type': 'application/json' }, body: Buffer.from(JSON.stringify({ name: repository, tags: ['t'] })) }),
  }
}

void describe('defect 8: the handler parses the request target strictly', () => {
  let h: HandlerServer
  before(async () => { h = await startHandlerServer(listingUpstream()) })
  after(async () => { await h?.close() })

  const cases: Array<[string, number, string]> = [
    ['//%', 400, 'NAME_INVALID'],
    ['//%/v2/', 400, 'NAME_INVALID'],
    ['/\\x', 400, 'NAME_INVALID'],
    ['/\\\\anyhost/v2/', 400, 'NAME_INVALID'],
    ['//anyhost/v2/', 400, 'NAME_INVALID'],
    ['//anyhost/v2/a/tags/list', 400, 'NAME_INVALID'],
    ['/v2/zzz/..\\..\\v2/a/tags/list', 400, 'NAME_INVALID'],
    ['/v2/zzz/%2e%2e/%2e%2e/v2/a/tags/list', 400, 'NAME_INVALID'],
    ['/v2/zzz/%2E%2e%2f..%2fa/tags/list', 400, 'NAME_INVALID'],
    ['/v2/a/%E0%A4%A/tags/list', 400, 'NAME_INVALID'],
    ['/v2/a%00/tags/list', 400, 'NAME_INVALID'],
    ['http://anyhost/v2/a/tags/list', 400, 'NAME_INVALID'],
    ['*', 400, 'NAME_INVALID'],
    ['/elsewhere', 404, 'NAME_UNKNOWN'],
    ['/v2/a/b/c', 404, 'NAME_UNKNOWN'],
    [`/v2/${'a/'.repeat(4000)}tags/list`, 400, 'NAME_INVALID'],
  ]
  for (const [target, status, code] of cases) {
    test(`${JSON.stringify(target.length > 60 ? `${target.slice(0, 60)}…` : target)} → ${status} ${code}`, async () => {
      const r = await rawRequest('127.0.0.1', h.port, target)
      assert.equal(r.status, status, `${r.head}\n${r.body}`)
      assert.equal(ociCode(r.body), code, r.body)
      assert.match(r.head, /content-type: application\/json/i)
    })
  }

  test('the server still answers afterwards, and a good target is served', async () => {
    const r = await rawRequest('127.0.0.1', h.port, '/v2/a/tags/list')
    assert.equal(r.status, 200)
    assert.deepEqual(JSON.parse(r.body), { name: 'a', tags: ['t'] })
  })
})
