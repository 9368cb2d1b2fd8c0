// Defect 4a (issue 8): tags/list names the repository the client asked for, not the upstream's name for it,
// whether the list comes from the upstream or from the local tag index.
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { request } from 'undici'
import type { Digest } from '../../../src/oci/index.js'
import { UpstreamError } from '../../../src/upstream/upstream-error.js'
import type { Upstream } from '../../../src/upstream/upstream.js'
import { blobOnlyUpstream } from '../../helpers/blob-only-upstream.js'
import { startHandlerServer, type HandlerServer } from './handler-server.js'

/** Answers tags/list as Distribution does, with its own name for the repository and a next-page Link. */
function upstreamAnswering (state: { down: boolean }): Upstream {
  return {
    ...blobOnlyUpstream(async () => { throw new Error('not used in this test') }),
    passThrough: async (registry, repository) => {
      if (state.down) throw new UpstreamError('ERR_UPSTREAM_UNAVAILABLE', 'connection refused', registry)
      return {
        status: 200,
        headers: { 'content-type': 'application/json', link: `</v2/${repository}/tags/list?last=b&n=2>; rel="next"` },
        body: Buffer.from(JSON.stringify({ name: repository, tags: ['a', 'b'] })),
      }
    },
  }
}

async function tagsList (url: string): Promise<{ status: number, link: unknown, doc: { name: string, tags: string[] } }> {
  const res = await request(url, { headersTimeout: 10_000, bodyTimeout: 10_000 })
  const text = await res.body.text()
  assert.equal(res.headers['content-length'], String(Buffer.byteLength(text)), 'the length is the rewritten body\'s')
  return { status: res.statusCode, link: res.headers.link, doc: JSON.parse(text) as { name: string, tags: string[] } }
}

void describe('defect 4: tags/list answers with the name the client asked for', () => {
  const state = { down: false }
  let h: HandlerServer
  before(async () => {
    h = await startHandlerServer(upstreamAnswering(state), { registries: ['docker.io', '127.0.0.1:5001'] })
    const record = { digest: `sha256:${'a'.repeat(64)}` as Digest, mediaType: 'application/vnd.oci.image.index.v1+json', size: 10, fetchedAt: 0 }
    await h.tags.set('docker.io', 'library/busybox', 'cached', record)
    await h.tags.set('127.0.0.1:5001', 'foo', 'cached', record)
  })
  after(async () => { await h?.close() })

  const asked: Array<[string, string, string]> = [
    // path, the name the client used, the next-page link it must be able to follow
    ['/v2/busybox/tags/list', 'busybox', '</v2/busybox/tags/list?last=b&n=2>; rel="next"'],
    ['/v2/127.0.0.1:5001/foo/tags/list', '127.0.0.1:5001/foo', '</v2/127.0.0.1:5001/foo/tags/list?last=b&n=2>; rel="next"'],
    ['/v2/foo/tags/list?ns=127.0.0.1:5001', 'foo', '</v2/foo/tags/list?last=b&n=2&ns=127.0.0.1%3A5001>; rel="next"'],
  ]
  for (const [path, name, link] of asked) {
    test(`defect 4: ${path} from the upstream says ${JSON.stringify(name)}`, async () => {
      state.down = false
      const r = await tagsList(`${h.url}${path}`)
      assert.equal(r.status, 200)
      assert.deepEqual(r.doc, { name, tags: ['a', 'b'] })
      assert.equal(r.link, link)
    })
    test(`defect 4: ${path} from the local tag index says ${JSON.stringify(name)}`, async () => {
      state.down = true
      try {
        const r = await tagsList(`${h.url}${path}`)
        assert.equal(r.status, 200)
        assert.deepEqual(r.doc, { name, tags: ['cached'] })
      } finally {
        state.down = false
      }
    })
  }
})
