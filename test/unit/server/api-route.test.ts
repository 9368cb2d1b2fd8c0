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
    // Percent-encoding is decoded before matching.
    [`/v2/a/b/manifests/${D.replace(':', '%3A')}`, { kind: 'manifest', name: 'a/b', ref: { kind: 'digest', digest: D } }],
    [`/v2/a/b/blobs/${D.replace(':', '%3a')}`, { kind: 'blob', name: 'a/b', digest: D }],
    ['/v2/a%2Fb/tags/list', { kind: 'tags', name: 'a/b' }],
    // The name is returned raw; validating it is the caller's job.
    ['/v2/Upper/tags/list', { kind: 'tags', name: 'Upper' }],
  ]
  for (const [path, expected] of routes) {
    test(`${path.length > 70 ? `${path.slice(0, 70)}…` : path}`, () => assert.deepEqual(parseApiPath(path), expected))
  }

  const errors: Array<[string, OciErrorCode]> = [
    ['/', 'NOT_FOUND'],
    ['/v1/', 'NOT_FOUND'],
    ['/v2x', 'NOT_FOUND'],
    ['/v3/a/tags/list', 'NOT_FOUND'],
    ['/v2/_catalog', 'NOT_FOUND'],
    ['/v2/a/b', 'NOT_FOUND'],
    ['/v2/a/b/manifests/', 'NOT_FOUND'],
    ['/v2/a/b/manifests', 'NOT_FOUND'],
    ['/v2/a/b/blobs/', 'NOT_FOUND'],
    ['/v2/a/b/tags', 'NOT_FOUND'],
    ['/v2/a/b/tags/list/x', 'NOT_FOUND'],
    ['/v2/manifests/latest', 'NOT_FOUND'],
    ['/v2/a/../b/tags/list', 'NAME_INVALID'],
    ['/v2/../a/manifests/latest', 'NAME_INVALID'],
    ['/v2/a/./b/tags/list', 'NAME_INVALID'],
    ['/v2/a/%2e%2e/b/tags/list', 'NAME_INVALID'],
    ['/v2/a/b/manifests/..', 'NAME_INVALID'],
    ['/v2/a/%E0%A4%A/tags/list', 'NAME_INVALID'],
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
