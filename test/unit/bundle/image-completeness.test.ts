import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { BundleError } from '../../../src/bundle/bundle-error.js'
import { missingContent } from '../../../src/bundle/image-completeness.js'
import { MediaType, type Digest } from '../../../src/oci/index.js'
import { makeFixture } from './bundle-fixture.js'

describe('missingContent', () => {
  const fx = makeFixture(10)
  const without = (...gone: Digest[]) => ({
    has: async (d: Digest) => fx.blobs.has(d) && !gone.includes(d),
    read: async (d: Digest) => gone.includes(d) ? undefined : fx.blobs.get(d),
  })
  const idx = { digest: fx.index.digest, mediaType: MediaType.OciIndex }
  const cases: Array<[string, string[], Digest[], Digest[]]> = [
    ['complete index, all platforms', [], [], []],
    ['complete for amd64 while arm64 content is absent', ['linux/amd64'], [fx.arm64.digest, fx.arm64.config, fx.arm64.layers[1] as Digest], []],
    ['all platforms, arm64 layer absent', [], [fx.arm64.layers[1] as Digest], [fx.arm64.layers[1] as Digest]],
    ['amd64 only, its shared layer absent', ['linux/amd64'], [fx.amd64.layers[0] as Digest], [fx.amd64.layers[0] as Digest]],
    ['amd64 only, its manifest absent', ['linux/amd64'], [fx.amd64.digest], [fx.amd64.digest]],
    ['the index itself absent', ['linux/amd64'], [fx.index.digest], [fx.index.digest]],
    ['config and a layer absent', [], [fx.amd64.config, fx.arm64.layers[1] as Digest], [fx.amd64.config, fx.arm64.layers[1] as Digest]],
  ]
  for (const [name, platforms, gone, want] of cases) {
    test(name, async () => {
      const { has, read } = without(...gone)
      assert.deepEqual(await missingContent({ ...idx, platforms }, has, read), want)
    })
  }
  test('a single manifest image', async () => {
    const { has, read } = without(fx.single.layers[1] as Digest)
    assert.deepEqual(await missingContent({ digest: fx.single.digest, mediaType: MediaType.OciManifest, platforms: [] }, has, read), [fx.single.layers[1]])
  })
  test('a platform the index lacks → ERR_BUNDLE_INCOMPLETE', async () => {
    const { has, read } = without()
    await assert.rejects(missingContent({ ...idx, platforms: ['linux/s390x'] }, has, read), (e: unknown) => e instanceof BundleError && e.code === 'ERR_BUNDLE_INCOMPLETE' && e.message.includes('linux/s390x'))
  })
  test('a malformed manifest → ERR_BUNDLE_INVALID', async () => {
    await assert.rejects(missingContent({ ...idx, platforms: [] }, async () => true, async () => Buffer.from('nope')), (e: unknown) => e instanceof BundleError && e.code === 'ERR_BUNDLE_INVALID')
  })
})
