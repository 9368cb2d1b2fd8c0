import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { pino } from 'pino'
import { ContainerdClient } from '../../../src/containerd/containerd-client.js'
import { CriImageClient } from '../../../src/containerd/cri-image-client.js'
import { parseImageReference } from '../../../src/oci/index.js'
import { ContainerdTarget, OWN_PIN_LABEL, PINNED_LABEL, reportsPins, SETS_LABEL } from '../../../src/precache/containerd-target.js'
import type { WantedImage } from '../../../src/precache/precache-target.js'
import { FakeContainerd } from '../containerd/fake-containerd.js'
import { makeTempDir, type TempDir } from '../../helpers/temp-dir.js'

const NS = 'k8s.io'
const DIGEST = `sha256:${'a'.repeat(64)}`
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json'

function wanted (key: string): WantedImage {
  return { key, ref: parseImageReference(key), platforms: [] }
}

describe('ContainerdTarget pins (fake containerd)', () => {
  let tmp: TempDir
  let fake: FakeContainerd
  let client: ContainerdClient
  let cri: CriImageClient
  let target: ContainerdTarget
  const signal = AbortSignal.timeout(30_000)

  before(async () => {
    tmp = await makeTempDir('precache-target')
    fake = new FakeContainerd(tmp.path)
    await fake.start()
    client = new ContainerdClient({ socket: fake.socket, namespace: NS, callTimeoutMs: 1000 })
    // The fake has no CRI service: the target then reports no size, which is all these tests need of it.
    cri = new CriImageClient({ socket: fake.socket, callTimeoutMs: 200 })
    target = new ContainerdTarget({ client, cri, logger: pino({ level: 'silent' }) })
  })

  after(async () => {
    client.close()
    cri.close()
    await fake.stop()
    await tmp.cleanup()
  })

  const labelsOf = (name: string): Record<string, string> | undefined => fake.images.get(NS)?.get(name)?.labels

  it('pins the named record with its own marker and the sets, and takes exactly that off again', async () => {
    const name = 'docker.io/library/busybox:1.36'
    fake.setImage(NS, { name, digest: DIGEST, mediaType: OCI_INDEX, size: 10, labels: { 'io.cri-containerd.image': 'managed' } })
    const held = await target.pin(wanted(name), ['web', 'base'], signal)
    assert.deepEqual(held, { digest: DIGEST, isPinned: true })
    assert.deepEqual(labelsOf(name), { 'io.cri-containerd.image': 'managed', [PINNED_LABEL]: 'pinned', [OWN_PIN_LABEL]: 'true', [SETS_LABEL]: 'base,web' })
    assert.deepEqual(await target.pinned(signal), [name])
    await target.unpin(name, signal)
    assert.deepEqual(labelsOf(name), { 'io.cri-containerd.image': 'managed' })
    assert.deepEqual(await target.pinned(signal), [])
  })

  it('leaves a pin it did not set: it adds its set label only, and removes only that', async () => {
    const name = 'registry.k8s.io/pause:3.9'
    fake.setImage(NS, { name, digest: DIGEST, mediaType: OCI_INDEX, size: 10, labels: { [PINNED_LABEL]: 'pinned' } })
    await target.pin(wanted(name), ['base'], signal)
    assert.deepEqual(labelsOf(name), { [PINNED_LABEL]: 'pinned', [SETS_LABEL]: 'base' })
    await target.unpin(name, signal)
    assert.deepEqual(labelsOf(name), { [PINNED_LABEL]: 'pinned' })
  })

  it('inspects by name: the record\'s target digest, or nothing', async () => {
    assert.equal(await target.inspect(wanted('docker.io/library/absent:1'), signal), undefined)
    const name = 'docker.io/library/alpine:3.19'
    fake.setImage(NS, { name, digest: DIGEST, mediaType: OCI_INDEX, size: 10 })
    assert.deepEqual(await target.inspect(wanted(name), signal), { digest: DIGEST, isPinned: false })
    await assert.rejects(target.pin(wanted('docker.io/library/absent:1'), ['x'], signal), /holds no image/)
  })

  it('knows which containerd versions report pins to the kubelet', () => {
    const cases: Array<[string, boolean | undefined]> = [
      ['1.6.20~ds1', false], ['v1.6.24', false], ['1.6.25', true], ['1.7.9', false], ['v1.7.10', true],
      ['1.5.18', false], ['2.0.0', true], ['1.8.0', true], ['nonsense', undefined],
    ]
    for (const [version, expected] of cases) assert.equal(reportsPins(version), expected, version)
  })
})
