import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import {
  normalizeRegistry, normalizeRepository, OciError, parseImageReference, parseManifestRef, parseRepositoryName, parseTag,
  type ImageReference, type OciErrorCode,
} from '../../../src/oci/index.js'

const SHA = `sha256:${'a'.repeat(64)}`

function assertOciError (fn: () => unknown, code: OciErrorCode): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof OciError, `expected OciError, got ${String(err)}`)
    assert.equal(err.code, code)
    return true
  })
}

/** Plain object view of a reference, so deepEqual compares fields rather than branded types. */
function view (ref: ImageReference): Record<string, string> {
  return { ...ref }
}

describe('parseImageReference', () => {
  const valid: Array<[string, Record<string, string>]> = [
    ['busybox', { registry: 'docker.io', repository: 'library/busybox', tag: 'latest' }],
    ['busybox:1.36', { registry: 'docker.io', repository: 'library/busybox', tag: '1.36' }],
    ['docker.io/x', { registry: 'docker.io', repository: 'library/x', tag: 'latest' }],
    ['index.docker.io/x', { registry: 'docker.io', repository: 'library/x', tag: 'latest' }],
    ['docker.io/bitnami/redis', { registry: 'docker.io', repository: 'bitnami/redis', tag: 'latest' }],
    ['bitnami/redis:7', { registry: 'docker.io', repository: 'bitnami/redis', tag: '7' }],
    ['ghcr.io/o/r:1', { registry: 'ghcr.io', repository: 'o/r', tag: '1' }],
    ['ghcr.io/x', { registry: 'ghcr.io', repository: 'x', tag: 'latest' }],
    [`localhost:5000/a/b@${SHA}`, { registry: 'localhost:5000', repository: 'a/b', digest: SHA }],
    ['localhost/a', { registry: 'localhost', repository: 'a', tag: 'latest' }],
    ['127.0.0.1:5001/test/img:v1', { registry: '127.0.0.1:5001', repository: 'test/img', tag: 'v1' }],
    ['[::1]:5000/a/b:1', { registry: '[::1]:5000', repository: 'a/b', tag: '1' }],
    [`busybox:1.36@${SHA}`, { registry: 'docker.io', repository: 'library/busybox', tag: '1.36', digest: SHA }],
    [`quay.io/a/b/c:v2@${SHA}`, { registry: 'quay.io', repository: 'a/b/c', tag: 'v2', digest: SHA }],
    // A port-looking suffix with no registry part is a tag, as docker reads it.
    ['localhost:5000', { registry: 'docker.io', repository: 'library/localhost', tag: '5000' }],
    ['  busybox  ', { registry: 'docker.io', repository: 'library/busybox', tag: 'latest' }],
  ]
  for (const [input, expected] of valid) {
    test(`${JSON.stringify(input)} parses`, () => assert.deepEqual(view(parseImageReference(input)), expected))
  }

  const invalid: Array<[string, OciErrorCode]> = [
    ['', 'NAME_INVALID'],
    ['   ', 'NAME_INVALID'],
    ['Busybox', 'NAME_INVALID'],
    ['docker.io/Library/busybox', 'NAME_INVALID'],
    ['ghcr.io/o/R:1', 'NAME_INVALID'],
    ['../x', 'NAME_INVALID'],
    ['ghcr.io/../x', 'NAME_INVALID'],
    ['ghcr.io/a//b', 'NAME_INVALID'],
    ['ghcr.io/-a', 'NAME_INVALID'],
    [`ghcr.io/${'a'.repeat(256)}`, 'NAME_INVALID'],
    ['busybox:', 'TAG_INVALID'],
    ['busybox:.hidden', 'TAG_INVALID'],
    [`busybox:${'t'.repeat(129)}`, 'TAG_INVALID'],
    ['busybox@sha256:abc', 'DIGEST_INVALID'],
    [`busybox@md5:${'a'.repeat(32)}`, 'DIGEST_INVALID'],
    ['bad_host.io:5000/x', 'NAME_INVALID'],
  ]
  for (const [input, code] of invalid) {
    test(`${JSON.stringify(input.length > 60 ? `${input.slice(0, 60)}…` : input)} is rejected with ${code}`, () => assertOciError(() => parseImageReference(input), code))
  }

  test('a 255-character repository is the longest accepted', () => {
    assert.equal(parseImageReference(`ghcr.io/${'a'.repeat(255)}`).repository.length, 255)
  })
})

describe('parseRepositoryName', () => {
  const valid = ['a', 'library/busybox', 'a/b/c/d', 'my-app', 'my--app', 'my_app', 'my__app', 'my.app', 'a0/b1', 'a'.repeat(255)]
  for (const name of valid) {
    test(`${JSON.stringify(name.slice(0, 40))} is valid`, () => assert.equal(parseRepositoryName(name), name))
  }
  const invalid = ['', 'A', 'library/Busybox', '/a', 'a/', 'a//b', '.a', 'a.', '-a', 'a-', '_a', 'a___b', 'a..b', '..', 'a/../b', 'a b', 'a:b', 'a@b', 'a'.repeat(256)]
  for (const name of invalid) {
    test(`${JSON.stringify(name.slice(0, 40))} is NAME_INVALID`, () => assertOciError(() => parseRepositoryName(name), 'NAME_INVALID'))
  }
})

describe('parseTag', () => {
  const valid = ['latest', 'v1.2.3', '1', '_x', 'A-b_c.D', 't'.repeat(128)]
  for (const tag of valid) {
    test(`${JSON.stringify(tag.slice(0, 40))} (${tag.length} chars) is valid`, () => assert.equal(parseTag(tag), tag))
  }
  const invalid = ['', '.x', '-x', 'a:b', 'a/b', 'a b', 'é', 't'.repeat(129)]
  for (const tag of invalid) {
    test(`${JSON.stringify(tag.slice(0, 40))} (${tag.length} chars) is TAG_INVALID`, () => assertOciError(() => parseTag(tag), 'TAG_INVALID'))
  }
})

describe('parseManifestRef', () => {
  test('a tag', () => assert.deepEqual(parseManifestRef('v1'), { kind: 'tag', tag: 'v1' }))
  test('a digest', () => assert.deepEqual(parseManifestRef(SHA), { kind: 'digest', digest: SHA }))
  test('anything with a colon is read as a digest', () => assertOciError(() => parseManifestRef('v1:x'), 'DIGEST_INVALID'))
  test('a bad tag is TAG_INVALID', () => assertOciError(() => parseManifestRef('.v1'), 'TAG_INVALID'))
  test('an uppercase digest is DIGEST_INVALID', () => assertOciError(() => parseManifestRef(SHA.toUpperCase()), 'DIGEST_INVALID'))
})

describe('normalizeRegistry', () => {
  const valid: Array<[string, string]> = [
    ['docker.io', 'docker.io'],
    ['index.docker.io', 'docker.io'],
    ['registry-1.docker.io', 'docker.io'],
    ['Docker.IO', 'docker.io'],
    ['ghcr.io', 'ghcr.io'],
    ['localhost', 'localhost'],
    ['localhost:5000', 'localhost:5000'],
    ['registry.example.com:443', 'registry.example.com:443'],
    ['127.0.0.1:5001', '127.0.0.1:5001'],
    ['my-registry', 'my-registry'],
    ['[::1]', '[::1]'],
    ['[::1]:5000', '[::1]:5000'],
    ['[FE80::1]:5000', '[fe80::1]:5000'],
    ['host:65535', 'host:65535'],
    [' ghcr.io ', 'ghcr.io'],
  ]
  for (const [input, expected] of valid) {
    test(`${JSON.stringify(input)} → ${expected}`, () => assert.equal(normalizeRegistry(input), expected))
  }
  const invalid = ['', 'a..b', '-a.com', 'a-.com', 'a_b.com', 'host:', 'host:123456', 'host:65536', 'host:0', 'a/b', 'http://ghcr.io', '::1', '[::1', '[zz::1]', 'a b', 'ghcr.io:5000:1']
  for (const input of invalid) {
    test(`${JSON.stringify(input)} is NAME_INVALID`, () => assertOciError(() => normalizeRegistry(input), 'NAME_INVALID'))
  }
})

describe('normalizeRepository', () => {
  const cases: Array<[string, string, string]> = [
    ['docker.io', 'busybox', 'library/busybox'],
    ['docker.io', 'library/busybox', 'library/busybox'],
    ['docker.io', 'bitnami/redis', 'bitnami/redis'],
    ['ghcr.io', 'busybox', 'busybox'],
    ['localhost:5000', 'a/b', 'a/b'],
  ]
  for (const [registry, name, expected] of cases) {
    test(`${registry} ${name} → ${expected}`, () => assert.equal(normalizeRepository(registry, name), expected))
  }
  test('an invalid name is NAME_INVALID', () => assertOciError(() => normalizeRepository('docker.io', 'Busybox'), 'NAME_INVALID'))
})

test('OciError carries the status of its code', () => {
  try {
    parseTag('.x')
    assert.fail('expected a throw')
  } catch (err) {
    assert.ok(err instanceof OciError)
    assert.equal(err.status, 400)
    assert.deepEqual(err.toJSON(), { errors: [{ code: 'TAG_INVALID', message: err.message }] })
  }
})
