// Issue 11 without containerd (the single-node default, a central mirror): the pre-cache warms the agent's
// own store with the selected platforms of each image and pins it, so that the budget never evicts it and
// clients pull it with the upstream gone. Real parts: Debian's Distribution upstream, the agent from source,
// skopeo as the client.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import type { PrecacheStatus } from '../../src/precache/precache-status.js'
import { startDistribution, type Distribution } from '../helpers/distribution.js'
import { startFlotilla, type FlotillaAgent } from '../helpers/flotilla-agent.js'
import { pushBlob } from '../helpers/push-blob.js'
import { runCommandChecked } from '../helpers/run-command.js'
import { makeTempDir, type TempDir } from '../helpers/temp-dir.js'
import { buildTestImage, pushTestImage, type TestImage } from '../helpers/test-image.js'
import { waitFor } from '../helpers/wait-for.js'

const REPO = 'e2e/precache-store'
const MB = 1_000_000

async function status (agent: FlotillaAgent): Promise<PrecacheStatus> {
  const res = await fetch(`${agent.url}/status/precache`, { signal: AbortSignal.timeout(5000) })
  assert.equal(res.status, 200)
  return await res.json() as PrecacheStatus
}

async function isHeld (agent: FlotillaAgent, digest: string): Promise<boolean> {
  return await stat(join(agent.dataDir, 'blobs', 'sha256', digest.slice('sha256:'.length))).then(() => true, () => false)
}

void describe('pre-cache into the store (issue 11, no containerd)', () => {
  let work: TempDir
  let registry: Distribution
  let image: TestImage
  let agent: FlotillaAgent
  let ref: string
  let imageBytes = 0

  before(async () => {
    work = await makeTempDir('precache-store')
    ;[registry, image] = await Promise.all([startDistribution(), buildTestImage({ largeLayerMiB: 8 })])
    ref = await pushTestImage(image.layoutDir, registry.host, REPO, image.tag)
    const arm = image.manifests.find((m) => m.platform.architecture === 'arm64')
    assert.ok(arm !== undefined)
    imageBytes = image.indexSize + arm.size + arm.configSize + arm.layers.reduce((n, l) => n + l.size, 0)
    const file = join(work.path, 'precache.yaml')
    await writeFile(file, `sets:\n  - name: warm\n    images: ["${ref}"]\n    platforms: [linux/arm64]\n    refresh: 2s\n`)
    // A budget the pre-cached image nearly fills: anything else pulled must make room without touching it.
    agent = await startFlotilla({
      registries: { [registry.host]: registry.url },
      args: ['--precache', file, '--store-max-bytes', String(imageBytes + 4 * MB), '--default-registry', registry.host],
    })
  })

  after(async () => {
    await agent?.stop()
    await registry?.stop()
    await work?.cleanup()
  })

  test('the selected platform is warmed and pinned; other platforms are not fetched', async () => {
    await waitFor(async () => (await status(agent)).sets[0]?.images[0]?.phase === 'Ready', { timeoutMs: 60_000, what: 'the image Ready' })
    const s = await status(agent)
    assert.equal(s.mode, 'store')
    assert.equal(s.pin.honoured, true)
    const img = s.sets[0]?.images[0]
    assert.equal(img?.ref, ref)
    assert.equal(img?.digest, image.indexDigest)
    assert.equal(img?.pinned, true)
    assert.equal(img?.bytes, imageBytes)
    assert.ok(img?.lastConfirmed !== null && Date.now() - Date.parse(img?.lastConfirmed ?? '') < 60_000)
    const arm = image.manifests.find((m) => m.platform.architecture === 'arm64')
    const amd = image.manifests.find((m) => m.platform.architecture === 'amd64')
    assert.ok(arm !== undefined && amd !== undefined)
    for (const d of [image.indexDigest, arm.digest, arm.configDigest, ...arm.layers.map((l) => l.digest)]) assert.ok(await isHeld(agent, d), `${d} held`)
    for (const d of [amd.digest, amd.configDigest]) assert.equal(await isHeld(agent, d), false, `${d} (amd64 only) fetched`)
    assert.equal(await agent.metric('flotilla_precache_images', { set: 'warm', phase: 'Ready' }), 1)
  })

  test('the budget evicts other blobs, never the pinned image', async () => {
    const others = []
    for (let i = 0; i < 3; i++) others.push(await pushBlob(registry.url, REPO, randomBytes(3 * MB + i)))
    for (const d of others) {
      const res = await fetch(`${agent.url}/v2/${REPO}/blobs/${d}?ns=${registry.host}`, { signal: AbortSignal.timeout(30_000) })
      assert.equal(res.status, 200)
      assert.ok((await res.arrayBuffer()).byteLength >= 3 * MB)
    }
    await waitFor(async () => await agent.metric('flotilla_store_evictions_total') >= 1, { timeoutMs: 20_000, what: 'an eviction pass to have freed something' })
    const arm = image.manifests.find((m) => m.platform.architecture === 'arm64')
    for (const d of [image.indexDigest, arm?.digest ?? '', ...(arm?.layers.map((l) => l.digest) ?? [])]) assert.ok(await isHeld(agent, d), `pinned ${d} was evicted`)
  })

  test('with the upstream gone the image still pulls from the agent, and stays Ready; the tag\'s last confirmation stops moving', async () => {
    await registry.stop()
    const stoppedAt = Date.now()
    const dest = join(work.path, 'copy')
    // The arm64 image: the platform that was warmed (skopeo asks without ?ns=, so the agent's default registry).
    await runCommandChecked('skopeo', ['--override-arch', 'arm64', 'copy', '--src-tls-verify=false', `docker://${agent.host}/${REPO}:${image.tag}`, `oci:${dest}:x`], { timeoutMs: 60_000 })
    // Refreshes (every 2 s) now get the agent's last good record of the tag, served stale.
    await waitFor(async () => await agent.metric('flotilla_stale_tags_served_total') >= 2, { timeoutMs: 30_000, what: 'two refreshes answered stale' })
    const img = (await status(agent)).sets[0]?.images[0]
    assert.ok(Date.parse(img?.lastConfirmed ?? '') <= stoppedAt, `last confirmed ${img?.lastConfirmed}, after the upstream stopped`)
    assert.equal(img?.phase, 'Ready')
    assert.equal(img?.pinned, true)
    assert.equal(img?.digest, image.indexDigest)
  })
})
