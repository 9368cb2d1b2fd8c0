import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { describe, test } from 'node:test'
import {
  accepts, DEFAULT_MANIFEST_ACCEPT, MAX_MANIFEST_BYTES, MediaType, OciError, parseManifest, referencedDescriptors, upstreamManifestAccept,
} from '../../../src/oci/index.js'

const digestOf = (s: string): string => `sha256:${createHash('sha256').update(s).digest('hex')}`
const CONFIG = { mediaType: 'application/vnd.oci.image.config.v1+json', digest: digestOf('config'), size: 6 }
const LAYER = { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: digestOf('layer'), size: 5 }
const CHILD_AMD64 = { mediaType: MediaType.OciManifest, digest: digestOf('amd64'), size: 400, platform: { os: 'linux', architecture: 'amd64' } }
const CHILD_ARM64 = { mediaType: MediaType.OciManifest, digest: digestOf('arm64'), size: 401, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' }, annotations: { a: 'b' } }

const bytes = (doc: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(doc))

const ociManifest = { schemaVersion: 2, mediaType: MediaType.OciManifest, config: CONFIG, layers: [LAYER] }
const ociIndex = { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [CHILD_AMD64, CHILD_ARM64] }
const dockerManifest = {
  schemaVersion: 2, mediaType: MediaType.DockerManifest,
  config: { ...CONFIG, mediaType: 'application/vnd.docker.container.image.v1+json' },
  layers: [{ ...LAYER, mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip' }],
}
const dockerList = {
  schemaVersion: 2, mediaType: MediaType.DockerManifestList,
  manifests: [{ ...CHILD_AMD64, mediaType: MediaType.DockerManifest }],
}

function assertInvalid (fn: () => unknown, message?: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof OciError, `expected OciError, got ${String(err)}`)
    assert.equal(err.code, 'MANIFEST_INVALID')
    if (message !== undefined) assert.match(err.message, message)
    return true
  })
}

describe('parseManifest: valid documents', () => {
  const cases: Array<[string, unknown, string | undefined, { kind: string, mediaType: string, children: number }]> = [
    ['OCI index', ociIndex, MediaType.OciIndex, { kind: 'index', mediaType: MediaType.OciIndex, children: 2 }],
    ['OCI manifest', ociManifest, MediaType.OciManifest, { kind: 'manifest', mediaType: MediaType.OciManifest, children: 2 }],
    ['Docker v2 manifest', dockerManifest, MediaType.DockerManifest, { kind: 'manifest', mediaType: MediaType.DockerManifest, children: 2 }],
    ['Docker manifest list', dockerList, MediaType.DockerManifestList, { kind: 'index', mediaType: MediaType.DockerManifestList, children: 1 }],
    ['OCI manifest with no Content-Type', ociManifest, undefined, { kind: 'manifest', mediaType: MediaType.OciManifest, children: 2 }],
    ['OCI manifest served as octet-stream', ociManifest, MediaType.OctetStream, { kind: 'manifest', mediaType: MediaType.OciManifest, children: 2 }],
    ['Content-Type with parameters', ociManifest, `${MediaType.OciManifest}; charset=utf-8`, { kind: 'manifest', mediaType: MediaType.OciManifest, children: 2 }],
    ['index without mediaType, inferred from manifests[]', { schemaVersion: 2, manifests: [CHILD_AMD64] }, undefined, { kind: 'index', mediaType: MediaType.OciIndex, children: 1 }],
    ['manifest without mediaType, inferred', { schemaVersion: 2, config: CONFIG, layers: [] }, undefined, { kind: 'manifest', mediaType: MediaType.OciManifest, children: 1 }],
    ['manifest without mediaType takes the Content-Type', { schemaVersion: 2, config: CONFIG, layers: [LAYER] }, MediaType.DockerManifest, { kind: 'manifest', mediaType: MediaType.DockerManifest, children: 2 }],
  ]
  for (const [name, doc, contentType, expected] of cases) {
    test(name, () => {
      const m = parseManifest(bytes(doc), contentType)
      assert.equal(m.kind, expected.kind)
      assert.equal(m.mediaType, expected.mediaType)
      assert.equal(referencedDescriptors(m).length, expected.children)
    })
  }

  test('an index keeps platforms (variant included) and annotations', () => {
    const m = parseManifest(bytes(ociIndex), MediaType.OciIndex)
    assert.equal(m.kind, 'index')
    assert.deepEqual(m.manifests, [CHILD_AMD64, CHILD_ARM64])
  })

  test('a manifest keeps its config and layers in order', () => {
    const m = parseManifest(bytes(ociManifest), MediaType.OciManifest)
    assert.equal(m.kind, 'manifest')
    assert.deepEqual(m.config, CONFIG)
    assert.deepEqual(m.layers, [LAYER])
  })

  test('schemaVersion 1 is recognised as schema1 (not parsed further)', () => {
    const m = parseManifest(bytes({ schemaVersion: 1, name: 'x', fsLayers: [] }))
    assert.deepEqual(m, { kind: 'schema1', mediaType: MediaType.DockerManifestV1Signed })
    assert.deepEqual(referencedDescriptors(m), [])
  })

  test('a Uint8Array view into a larger buffer is read at its own offset', () => {
    const inner = bytes(ociManifest)
    const outer = new Uint8Array(inner.byteLength + 20).fill(0x7b)
    outer.set(inner, 10)
    assert.equal(parseManifest(outer.subarray(10, 10 + inner.byteLength)).kind, 'manifest')
  })

  test('exactly MAX_MANIFEST_BYTES is accepted', () => {
    const base = JSON.stringify({ ...ociManifest, annotations: { pad: '' } })
    const doc = base.replace('"pad":""', `"pad":"${'x'.repeat(MAX_MANIFEST_BYTES - base.length)}"`)
    assert.equal(doc.length, MAX_MANIFEST_BYTES)
    assert.equal(parseManifest(new TextEncoder().encode(doc)).kind, 'manifest')
  })
})

describe('parseManifest: invalid documents are MANIFEST_INVALID', () => {
  const cases: Array<[string, Uint8Array, string | undefined, RegExp]> = [
    ['mediaType/Content-Type mismatch', bytes(ociManifest), MediaType.DockerManifest, /does not match Content-Type/],
    ['index served as a manifest', bytes(ociIndex), MediaType.OciManifest, /does not match/],
    ['invalid JSON', new TextEncoder().encode('{"schemaVersion": 2,'), undefined, /not valid JSON/],
    ['JSON array', bytes([ociManifest]), undefined, /JSON object/],
    ['JSON null', bytes(null), undefined, /JSON object/],
    ['schemaVersion 3', bytes({ ...ociManifest, schemaVersion: 3 }), undefined, /schemaVersion/],
    ['schemaVersion missing', bytes({ mediaType: MediaType.OciManifest, config: CONFIG, layers: [] }), undefined, /schemaVersion/],
    ['negative size', bytes({ ...ociManifest, layers: [{ ...LAYER, size: -1 }] }), undefined, /layers\[0\]: size/],
    ['fractional size', bytes({ ...ociManifest, layers: [{ ...LAYER, size: 1.5 }] }), undefined, /layers\[0\]: size/],
    ['size as a string', bytes({ ...ociManifest, config: { ...CONFIG, size: '6' } }), undefined, /config: size/],
    ['bad digest', bytes({ ...ociManifest, layers: [LAYER, { ...LAYER, digest: 'sha256:abc' }] }), undefined, /layers\[1\]: invalid sha256 digest/],
    ['digest missing', bytes({ ...ociManifest, config: { ...CONFIG, digest: undefined } }), undefined, /config: digest missing/],
    ['mediaType missing on a descriptor', bytes({ ...ociManifest, config: { ...CONFIG, mediaType: '' } }), undefined, /config: mediaType missing/],
    ['config missing', bytes({ schemaVersion: 2, mediaType: MediaType.OciManifest, layers: [] }), undefined, /config: descriptor must be an object/],
    ['layers missing', bytes({ schemaVersion: 2, mediaType: MediaType.OciManifest, config: CONFIG }), undefined, /layers array/],
    ['index mediaType without manifests', bytes({ schemaVersion: 2, mediaType: MediaType.OciIndex }), undefined, /manifests array/],
    ['index child with bad digest', bytes({ ...ociIndex, manifests: [{ ...CHILD_AMD64, digest: `sha256:${'A'.repeat(64)}` }] }), undefined, /manifests\[0\]/],
    ['platform without architecture', bytes({ ...ociIndex, manifests: [{ ...CHILD_AMD64, platform: { os: 'linux' } }] }), undefined, /platform needs os and architecture/],
    ['oversize (> 4 MiB)', new Uint8Array(MAX_MANIFEST_BYTES + 1).fill(0x20), undefined, /limit is 4194304/],
  ]
  for (const [name, input, contentType, message] of cases) {
    test(name, () => assertInvalid(() => parseManifest(input, contentType), message))
  }
})

describe('referencedDescriptors', () => {
  test('index: its children', () => {
    assert.deepEqual(referencedDescriptors(parseManifest(bytes(ociIndex))).map((d) => d.digest), [CHILD_AMD64.digest, CHILD_ARM64.digest])
  })
  test('manifest: config then layers', () => {
    const m = parseManifest(bytes({ ...ociManifest, layers: [LAYER, { ...LAYER, digest: digestOf('layer2') }] }))
    assert.deepEqual(referencedDescriptors(m).map((d) => d.digest), [CONFIG.digest, LAYER.digest, digestOf('layer2')])
  })
})

describe('accepts', () => {
  const cases: Array<[string | undefined, string, boolean]> = [
    [undefined, MediaType.OciManifest, true],
    ['', MediaType.OciManifest, true],
    ['*/*', MediaType.OciIndex, true],
    ['application/*', MediaType.DockerManifest, true],
    [MediaType.OciManifest, MediaType.OciManifest, true],
    [MediaType.OciManifest, MediaType.OciIndex, false],
    [`${MediaType.DockerManifest}, ${MediaType.OciIndex};q=0.5`, MediaType.OciIndex, true],
    [`${MediaType.DockerManifest.toUpperCase()}`, MediaType.DockerManifest, true],
    ['text/*', MediaType.OciManifest, false],
    ['text/html, , ', MediaType.OciManifest, false],
  ]
  for (const [accept, mediaType, expected] of cases) {
    test(`${JSON.stringify(accept)} ${expected ? 'admits' : 'refuses'} ${mediaType}`, () => assert.equal(accepts(accept, mediaType), expected))
  }
})

describe('upstreamManifestAccept', () => {
  test('no Accept: every manifest type', () => {
    assert.equal(upstreamManifestAccept(undefined), DEFAULT_MANIFEST_ACCEPT)
    assert.equal(upstreamManifestAccept(''), DEFAULT_MANIFEST_ACCEPT)
  })

  for (const wildcard of ['*/*', 'application/*', '*/*;q=0.8', 'application/*, */*']) {
    test(`${JSON.stringify(wildcard)}: the manifest types are spelled out, the wildcard kept`, () => {
      const out = upstreamManifestAccept(wildcard)
      const types = out.split(',').map((t) => t.trim())
      for (const t of [MediaType.OciIndex, MediaType.DockerManifestList, MediaType.OciManifest, MediaType.DockerManifest]) {
        assert.ok(types.includes(t), `${t} missing from ${out}`)
      }
      assert.ok(out.endsWith(wildcard), out)
    })
  }

  const specific = [
    MediaType.OciManifest,
    `${MediaType.DockerManifest}, ${MediaType.DockerManifestList}`,
    `${MediaType.OciIndex};q=0.9, */*;q=0.1`,
  ]
  for (const accept of specific) {
    test(`a specific Accept is forwarded unchanged: ${accept}`, () => assert.equal(upstreamManifestAccept(accept), accept))
  }
})
