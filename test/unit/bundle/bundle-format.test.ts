import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { BundleError } from '../../../src/bundle/bundle-error.js'
import {
  blobPathOf, digestOfBlobPath, dockerManifestJson, ociIndexJson, parseBundleInfo, parseOciIndexJson,
  partFileName, partsManifestName, type BundleInfo,
} from '../../../src/bundle/bundle-format.js'
import { includedChildren, MediaType, parseManifest, type Digest } from '../../../src/oci/index.js'
import { makeFixture } from './bundle-fixture.js'

const D = `sha256:${'a'.repeat(64)}` as Digest

describe('blob paths', () => {
  test('blobPathOf', () => { assert.equal(blobPathOf(D), `blobs/sha256/${'a'.repeat(64)}`) })
  const cases: Array<[string, string | undefined]> = [
    [`blobs/sha256/${'a'.repeat(64)}`, D],
    [`./blobs/sha256/${'a'.repeat(64)}`, D],
    [`blobs/sha256/${'a'.repeat(63)}`, undefined],
    [`blobs/md5/${'a'.repeat(32)}`, undefined],
    [`blobs/sha256/${'A'.repeat(64)}`, undefined],
    [`blobs/sha256/${'a'.repeat(64)}/x`, undefined],
    ['index.json', undefined],
    ['blobs/sha256/', undefined],
  ]
  for (const [name, want] of cases) test(`digestOfBlobPath(${JSON.stringify(name.slice(0, 24))}…)`, () => { assert.equal(digestOfBlobPath(name), want) })
})

describe('index.json', () => {
  test('one descriptor per image, named for containerd and skopeo', () => {
    const fx = makeFixture(10)
    const doc = JSON.parse(ociIndexJson(fx.images).toString()) as { schemaVersion: number, manifests: Array<Record<string, unknown>> }
    assert.equal(doc.schemaVersion, 2)
    assert.deepEqual(doc.manifests[0], {
      mediaType: MediaType.OciIndex, digest: fx.index.digest, size: fx.index.bytes.length,
      annotations: { 'io.containerd.image.name': 'docker.io/library/multi:1.0', 'org.opencontainers.image.ref.name': 'docker.io/library/multi:1.0' },
    })
    assert.deepEqual(parseOciIndexJson(ociIndexJson(fx.images)).images.map((i) => i.ref), fx.images.map((i) => i.ref))
  })
  test('a foreign index with only a bare tag keeps it as ref; none gives no ref', () => {
    const bytes = Buffer.from(JSON.stringify({ schemaVersion: 2, manifests: [
      { mediaType: MediaType.OciManifest, digest: D, size: 3, annotations: { 'org.opencontainers.image.ref.name': 'v1' } },
      { mediaType: MediaType.OciManifest, digest: D, size: 3 },
    ] }))
    assert.deepEqual(parseOciIndexJson(bytes).images, [{ ref: 'v1', digest: D, mediaType: MediaType.OciManifest, size: 3 }, { digest: D, mediaType: MediaType.OciManifest, size: 3 }])
  })
  for (const [name, text] of [['not JSON', '{'], ['a manifest', JSON.stringify({ schemaVersion: 2, config: {}, layers: [] })], ['schema 1', '{"schemaVersion":3}']]) {
    test(`${name} → ERR_BUNDLE_INVALID`, () => {
      assert.throws(() => parseOciIndexJson(Buffer.from(text as string)), (e: unknown) => e instanceof BundleError && e.code === 'ERR_BUNDLE_INVALID')
    })
  }
})

describe('parseBundleInfo', () => {
  const good: BundleInfo = {
    version: 1, createdAt: '2026-01-01T00:00:00.000Z', excluded: { [D]: 5 },
    images: [{ ref: 'docker.io/library/a:1', digest: D, mediaType: MediaType.OciIndex, size: 10, platforms: ['linux/amd64', 'linux/arm/v7'] }],
    part: { index: 2, count: 3, id: 'x' },
  }
  test('valid', () => { assert.deepEqual(parseBundleInfo(Buffer.from(JSON.stringify(good))), good) })
  const bad: Array<[string, unknown]> = [
    ['version 2', { ...good, version: 2 }],
    ['a bad digest', { ...good, images: [{ ...good.images[0], digest: 'sha256:x' }] }],
    ['a bad platform', { ...good, images: [{ ...good.images[0], platforms: ['linux'] }] }],
    ['a negative size', { ...good, excluded: { [D]: -1 } }],
    ['an excluded key that is not a digest', { ...good, excluded: { nope: 1 } }],
    ['part index beyond count', { ...good, part: { index: 4, count: 3, id: 'x' } }],
    ['no images', { ...good, images: undefined }],
  ]
  for (const [name, doc] of bad) {
    test(`${name} → ERR_BUNDLE_INVALID`, () => {
      assert.throws(() => parseBundleInfo(Buffer.from(JSON.stringify(doc))), (e: unknown) => e instanceof BundleError && e.code === 'ERR_BUNDLE_INVALID' && e.message.startsWith('flotilla-bundle.json'))
    })
  }
})

describe('dockerManifestJson', () => {
  test('RepoTags keep the registry; an image by digest has none', () => {
    const fx = makeFixture(10)
    const m = parseManifest(fx.blobs.get(fx.amd64.digest) as Buffer)
    const doc = JSON.parse(dockerManifestJson([{ ref: 'docker.io/library/multi:1.0', manifest: m }, { ref: `ghcr.io/o/r@${D}`, manifest: m }]).toString()) as Array<{ RepoTags: string[], Config: string, Layers: string[] }>
    assert.deepEqual(doc.map((e) => e.RepoTags), [['docker.io/library/multi:1.0'], []])
    assert.equal(doc[0]?.Config, blobPathOf(fx.amd64.config))
    assert.deepEqual(doc[0]?.Layers, fx.amd64.layers.map(blobPathOf))
  })
  test('an index is refused', () => {
    const fx = makeFixture(10)
    assert.throws(() => dockerManifestJson([{ ref: 'a', manifest: parseManifest(fx.index.bytes) }]), TypeError)
  })
})

describe('includedChildren', () => {
  const att = `sha256:${'b'.repeat(64)}`
  const fx = makeFixture(10)
  const index = parseManifest(Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [
      ...(JSON.parse(fx.index.bytes.toString()) as { manifests: unknown[] }).manifests,
      { mediaType: MediaType.OciManifest, digest: att, size: 1, platform: { os: 'unknown', architecture: 'unknown' }, annotations: { 'vnd.docker.reference.digest': fx.arm64.digest, 'vnd.docker.reference.type': 'attestation-manifest' } },
    ],
  })))
  const cases: Array<[string[], string[]]> = [
    [[], [fx.amd64.digest, fx.arm64.digest, att]],
    [['linux/amd64'], [fx.amd64.digest]],
    [['linux/arm64'], [fx.arm64.digest, att]],
    [['linux/arm64/v8', 'linux/amd64'], [fx.amd64.digest, fx.arm64.digest, att]],
    [['linux/s390x'], []],
  ]
  for (const [platforms, want] of cases) test(`[${platforms.join(', ')}]`, () => { assert.deepEqual(includedChildren(index, platforms).map((d) => d.digest), want) })
})

describe('part names', () => {
  const cases: Array<[string, number, number, string, string]> = [
    ['/x/out.tar', 1, 3, '/x/out.part-001-of-003.tar', '/x/out.parts.json'],
    ['/x/out.tar.zst', 12, 12, '/x/out.part-012-of-012.tar.zst', '/x/out.parts.json'],
    ['/x/out', 2, 1000, '/x/out.part-0002-of-1000', '/x/out.parts.json'],
  ]
  for (const [file, i, n, part, parts] of cases) {
    test(file, () => {
      assert.equal(partFileName(file, i, n), part)
      assert.equal(partsManifestName(file), parts)
    })
  }
})
