// The bundle format against the real tools: a bundle written by writeBundle from an OCI layout (the multi-arch test
// image) is imported by containerd 1.6's `ctr images import` under its full name with the index digest, and read by
// skopeo's `oci-archive:FILE:REF` with the layout's digests; both for a full bundle and for a sparse one that carries
// only the host platform's blobs next to the original index bytes.
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import type { BundleImage } from '../../src/bundle/bundle-format.js'
import { readBundle } from '../../src/bundle/bundle-reader.js'
import { writeBundle } from '../../src/bundle/bundle-writer.js'
import { missingContent } from '../../src/bundle/image-completeness.js'
import type { Digest } from '../../src/oci/index.js'
import { startContainerd, type Containerd } from '../helpers/containerd.js'
import { skopeoCopy } from '../helpers/skopeo.js'
import { makeTempDir, type TempDir } from '../helpers/temp-dir.js'
import { OCI_INDEX, blobPath, buildTestImage, hostArchitecture, hostManifest, type TestImage } from '../helpers/test-image.js'

const REF = 'registry.example:5000/flotilla/bundle-test:v1'

function sha256 (bytes: Buffer): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`
}

void describe('bundle format with ctr import and skopeo (real containerd 1.6, skopeo)', { timeout: 240_000 }, () => {
  const cleanups: Array<() => Promise<void>> = []
  let work: TempDir
  let image: TestImage
  let fullFile: string
  let sparseFile: string
  const hostPlatform = `linux/${hostArchitecture()}`

  async function writeFrom (file: string, digests: readonly string[], platforms: string[]): Promise<void> {
    const blobs = await Promise.all(digests.map(async (d) => ({ digest: d as Digest, size: (await stat(blobPath(image.layoutDir, d))).size })))
    const bundleImage: BundleImage = { ref: REF, digest: image.indexDigest as Digest, mediaType: OCI_INDEX, size: image.indexSize, platforms }
    await writeBundle({ file, images: [bundleImage], blobs, open: async (d) => createReadStream(blobPath(image.layoutDir, d), { highWaterMark: 1 << 20 }) })
  }

  before(async () => {
    work = await makeTempDir('bundle-format')
    cleanups.push(() => work.cleanup())
    image = await buildTestImage({ workDir: work.path, largeLayerMiB: 4, tag: 'v1' })
    const host = hostManifest(image)
    fullFile = join(work.path, 'full.tar')
    sparseFile = join(work.path, 'sparse.tar')
    await writeFrom(fullFile, image.allDigests, [])
    await writeFrom(sparseFile, [image.indexDigest, host.digest, host.configDigest, ...host.layers.map((l) => l.digest)], [hostPlatform])
  })

  after(async () => {
    for (const c of cleanups.reverse()) await c()
  })

  test('readBundle verifies both; the sparse one is complete for the host platform only', async () => {
    for (const [file, count] of [[fullFile, image.allDigests.length], [sparseFile, 2 + hostManifest(image).layers.length + 1]] as const) {
      const contents = await readBundle(file, { onBlob: async (_d, _s, body) => { for await (const _ of body) { /* consume */ } } })
      assert.equal(contents.blobs.size, count, file)
      assert.deepEqual(contents.index.images.map((i) => [i.ref, i.digest]), [[REF, image.indexDigest]])
      const has = async (d: Digest): Promise<boolean> => contents.blobs.has(d)
      const read = async (d: Digest): Promise<Buffer | undefined> => contents.blobs.has(d) ? await readFile(blobPath(image.layoutDir, d)) : undefined
      const img = { digest: image.indexDigest as Digest, mediaType: OCI_INDEX }
      assert.deepEqual(await missingContent({ ...img, platforms: [hostPlatform] }, has, read), [])
      const missingAll = await missingContent({ ...img, platforms: [] }, has, read)
      assert.equal(missingAll.length === 0, file === fullFile, `${file}: ${missingAll.join(' ')}`)
    }
  })

  void describe('ctr images import', () => {
    let containerd: Containerd
    before(async () => {
      containerd = await startContainerd()
      cleanups.push(() => containerd.stop())
    })

    const listed = async (namespace?: string): Promise<string> => {
      const ls = await containerd.ctr(['images', 'ls'], { timeoutMs: 20_000, namespace })
      assert.equal(ls.code, 0, ls.stderr)
      return ls.stdout
    }
    const importFile = async (file: string, flags: string[] = [], namespace?: string): Promise<{ code: number | null, stdout: string, stderr: string }> =>
      await containerd.ctr(['images', 'import', '--snapshotter', containerd.snapshotter, ...flags, file], { timeoutMs: 120_000, namespace })

    test('the full bundle imports under its full name with the index digest (host platform, then --all-platforms)', async () => {
      for (const flags of [[], ['--all-platforms']]) {
        const r = await importFile(fullFile, flags)
        assert.equal(r.code, 0, `${flags.join(' ')}: ${r.stderr}`)
        const line = (await listed()).split('\n').find((l) => l.startsWith(`${REF} `))
        assert.ok(line !== undefined, `image ${REF} listed`)
        assert.ok(line.includes(image.indexDigest), line)
        const rm = await containerd.ctr(['images', 'rm', '--sync', REF])
        assert.equal(rm.code, 0, rm.stderr)
      }
    })

    test('the sparse bundle imports for the host platform; --all-platforms fails on the absent platform', async () => {
      // Namespaces of their own: content metadata is per namespace, so nothing of the full import is visible.
      const r = await importFile(sparseFile, [], 'sparse-host')
      assert.equal(r.code, 0, r.stderr)
      const line = (await listed('sparse-host')).split('\n').find((l) => l.startsWith(`${REF} `))
      assert.ok(line?.includes(image.indexDigest), line)
      const check = await containerd.ctr(['images', 'check'], { timeoutMs: 20_000, namespace: 'sparse-host' })
      assert.match(check.stdout.split('\n').find((l) => l.startsWith(`${REF} `)) ?? '', /complete/, check.stdout)
      const all = await importFile(sparseFile, ['--all-platforms'], 'sparse-all')
      assert.notEqual(all.code, 0, `a sparse index cannot be imported for all platforms: ${all.stdout}`)
      assert.match(all.stderr, /not found/)
    })
  })

  void describe('skopeo oci-archive:FILE:REF', () => {
    const manifestDigestOf = async (dir: string, name = 'manifest.json'): Promise<string> => sha256(await readFile(join(dir, name)))
    test('full bundle: host manifest digest; with --all the index digest', async () => {
      const one = join(work.path, 'skopeo-full-host')
      await skopeoCopy(`oci-archive:${fullFile}:${REF}`, `dir:${one}`, { preserveDigests: true })
      assert.equal(await manifestDigestOf(one), hostManifest(image).digest)
      const all = join(work.path, 'skopeo-full-all')
      await skopeoCopy(`oci-archive:${fullFile}:${REF}`, `dir:${all}`, { all: true, preserveDigests: true })
      assert.equal(await manifestDigestOf(all), image.indexDigest)
      for (const m of image.manifests) assert.equal(await manifestDigestOf(all, `${m.digest.slice('sha256:'.length)}.manifest.json`), m.digest)
    })
    test('sparse bundle: the host platform copies with its manifest digest', async () => {
      const out = join(work.path, 'skopeo-sparse-host')
      await skopeoCopy(`oci-archive:${sparseFile}:${REF}`, `dir:${out}`, { preserveDigests: true })
      assert.equal(await manifestDigestOf(out), hostManifest(image).digest)
      for (const l of hostManifest(image).layers) assert.equal((await stat(join(out, l.digest.slice('sha256:'.length)))).size, l.size)
    })
  })
})
