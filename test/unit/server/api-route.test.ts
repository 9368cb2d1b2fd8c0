import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { OciError, type OciErrorCode } from '../../../src/oci/index.js'
import { parseApiPath } from '../../../src/server/api-route.js'

const D = `sha256:${'b'.repeat(64)}`

describe('parseApiPath', () => {
  const routes: Array<[string, Record<string, unknown>]> = [
    ['/v2/', { kind: 'base' }],
    ['/v2', { kind: 'base' }],
    ['/v2/busybox/manifests/latest', { kind: 'manifest', name: 'busybox', ref: { kind: 'tag', tag: 'latest' } }],
    [`/v2/library/busybox/manifests/${D}`, { kind: 'manifest', name: 'library/busybox', ref: { kind: 'digest', digest: D } }],
    ['/v2/a/b/c/d/manifests/v1.2', { kind: 'manifest', name: 'a/b/c/d', ref: { kind: 'tag', tag: 'v1.2' } }],
    // A repository may itself contain path words the API uses.
    ['/v2/org/manifests/manifests/v1', { kind: 'manifest', name: 'org/manifests', ref: { kind: 'tag', tag: 'v1' } }],
    ['/v2/org/blobs/app/manifests/v1', { kind: 'manifest', name: 'org/blobs/app', ref: { kind: 'tag', tag: 'v1' } }],
    [`/v2/library/busybox/blobs/${D}`, { kind: 'blob', name: 'library/busybox', digest: D }],
    ['/v2/a/b/blobs/uploads/', { kind: 'upload', name: 'a/b' }],
    ['/v2/a/b/blobs/uploads', { kind: 'upload', name: 'a/b' }],
    ['/v2/a/b/blobs/uploads/3f1c-uuid', { kind: 'upload', name: 'a/b' }],
    ['/v2/a/b/tags/list', { kind: 'tags', name: 'a/b' }],
    [`/v2/a/b/referrers/${D}`, { kind: 'referrers', name: 'a/b', digest: D }],
    // The path comes decoded (parseRequestTarget): it is not decoded a second time.
    ['/v2/a%2Fb/tags/list', { kind: 'tags', name: 'a%2Fb' }],
    // The name is returned raw; validating it is the caller's job.
    ['/v2/Upper/tags/list', { kind: 'tags', name: 'Upper' }],
  ]
  for (const [path, expected] of routes) {
    test(`${path.length > 70 ? `${path.slice(0, 70)}…` : path}`, () => assert.deepEqual(parseApiPath(path), expected))
  }

  const errors: Array<[string, OciErrorCode]> = [
    ['/', 'NAME_UNKNOWN'],
    ['/v1/', 'NAME_UNKNOWN'],
    ['/v2x', 'NAME_UNKNOWN'],
    ['/v3/a/tags/list', 'NAME_UNKNOWN'],
    ['/v2/_catalog', 'NAME_UNKNOWN'],
    ['/v2/a/b', 'NAME_UNKNOWN'],
    ['/v2/a/b/manifests/', 'NAME_UNKNOWN'],
    ['/v2/a/b/manifests', 'NAME_UNKNOWN'],
    ['/v2/a/b/blobs/', 'NAME_UNKNOWN'],
    ['/v2/a/b/tags', 'NAME_UNKNOWN'],
    ['/v2/a/b/tags/list/x', 'NAME_UNKNOWN'],
    ['/v2/manifests/latest', 'NAME_UNKNOWN'],
    // Decoding and dot segments are parseRequestTarget's (test/unit/http/request-target.test.ts).
    ['/v2/a/b/blobs/sha256:abc', 'DIGEST_INVALID'],
    [`/v2/a/b/blobs/md5:${'a'.repeat(32)}`, 'DIGEST_INVALID'],
    ['/v2/a/b/blobs/latest', 'DIGEST_INVALID'],
    [`/v2/a/b/manifests/sha256:${'B'.repeat(64)}`, 'DIGEST_INVALID'],
    ['/v2/a/b/referrers/v1', 'DIGEST_INVALID'],
    ['/v2/a/b/manifests/.latest', 'TAG_INVALID'],
    [`/v2/a/b/manifests/${'t'.repeat(129)}`, 'TAG_INVALID'],
  ]
  for (const [path, code] of errors) {
    test(`${path.length > 70 ? `${path.slice(0, 70)}…` : path} → ${code}`, () => {
      assert.throws(() => parseApiPath(path), (err: unknown) => {
        assert.ok(err instanceof OciError, `expected OciError, got ${String(err)}`)
        assert.equal(err.code, code)
        return true
      })
    })
  }
})
