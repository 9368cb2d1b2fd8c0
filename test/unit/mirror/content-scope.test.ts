import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { pino } from 'pino'
import { ContentScope, hostOf } from '../../../src/mirror/content-scope.js'
import type { Digest } from '../../../src/oci/index.js'
import { MemoryScopeIndex } from '../../../src/store/scope-index.js'
import { FakeRegistry } from './fake-registry.js'

const DIGEST = `sha256:${'a'.repeat(64)}` as Digest

function scope (credentialed: readonly string[]): { scope: ContentScope, upstream: FakeRegistry } {
  const upstream = new FakeRegistry()
  return {
    upstream,
    scope: new ContentScope({
      scopes: new MemoryScopeIndex(), upstream, fetchesWithCredentials: (r) => credentialed.includes(r),
      logger: pino({ level: 'silent' }), now: Date.now, signal: () => AbortSignal.timeout(1000),
    }),
  }
}

const req = (registry: string, repository: string, localOnly = false): { registry: string, repository: string, signal: AbortSignal, localOnly: boolean } =>
  ({ registry, repository, signal: new AbortController().signal, localOnly })

void describe('ContentScope', () => {
  test('hostOf: a registry as containerd\'s labels name it', () => {
    for (const [name, host] of [['docker.io', 'docker.io'], ['127.0.0.1:5000', '127.0.0.1'], ['[::1]:5000', '::1'], ['reg.example:443', 'reg.example']]) {
      assert.equal(hostOf(name as string), host)
    }
  })

  test('containerd\'s labels (host without port) admit the repository they name, and restrict a credentialed registry\'s content', async () => {
    const { scope: s } = scope(['127.0.0.1:5001'])
    await s.check(req('127.0.0.1:5001', 'team/app', true), DIGEST, 'blob', ['127.0.0.1/team/app'])
    await assert.rejects(s.check(req('127.0.0.1:5001', 'team/other', true), DIGEST, 'blob', ['127.0.0.1/team/app']), { code: 'ERR_NOT_IN_SCOPE' })
  })

  test('containerd content of a registry without credentials is public', async () => {
    const { scope: s } = scope([])
    await s.check(req('127.0.0.1:5001', 'team/other', true), DIGEST, 'blob', ['127.0.0.1/team/app'])
  })

  test('under a registry with credentials, content with no record (an index lost) is served only once the upstream confirms', async () => {
    const { scope: s, upstream } = scope(['reg.example'])
    await assert.rejects(s.check(req('reg.example', 'team/app', true), DIGEST, 'blob'), { code: 'ERR_NOT_IN_SCOPE' }, 'a peer asking cannot confirm')
    await assert.rejects(s.check(req('reg.example', 'team/app'), DIGEST, 'blob'), { code: 'ERR_NOT_IN_SCOPE' }, 'the upstream does not have it there')
    const layer = upstream.image.layerDigest
    await s.check(req('reg.example', 'team/app'), layer, 'blob')
    await s.check(req('reg.example', 'team/app', true), layer, 'blob')
    assert.equal(upstream.calls.filter((c) => c.startsWith('HEAD blob')).length, 2, 'confirmed once, then remembered')
  })
})
