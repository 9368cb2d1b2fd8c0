// ContainerdClient.updateImageLabels against the fake images service: field-mask paths `labels.<key>` set
// or delete single labels and leave the others alone.
import assert from 'node:assert/strict'
import { after, before, beforeEach, describe, test } from 'node:test'
import { ContainerdClient } from '../../../src/containerd/containerd-client.js'
import { makeTempDir, type TempDir } from '../../helpers/temp-dir.js'
import { FakeContainerd } from './fake-containerd.js'

const NS = 'k8s.io'
const NAME = '127.0.0.1:5001/test/img:v1'
const DIGEST = 'sha256:' + 'a'.repeat(64)
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json'
const PIN = 'io.cri-containerd.pinned'
const SETS = 'dev.flotilla.precache.sets'

void describe('ContainerdClient.updateImageLabels', () => {
  let tmp: TempDir
  let fake: FakeContainerd
  let client: ContainerdClient

  before(async () => {
    tmp = await makeTempDir('containerd-labels')
    fake = new FakeContainerd(tmp.path)
    await fake.start()
    client = new ContainerdClient({ socket: fake.socket, namespace: NS, callTimeoutMs: 1000 })
  })

  after(async () => {
    client.close()
    await fake.stop()
    await tmp.cleanup()
  })

  beforeEach(() => {
    fake.images.clear()
    fake.calls.length = 0
    fake.setImage(NS, { name: NAME, digest: DIGEST, mediaType: OCI_INDEX, size: 8, labels: { 'io.cri-containerd.image': 'managed' } })
  })

  void test('sets labels and keeps the others', async () => {
    const updated = await client.updateImageLabels(NAME, { [PIN]: 'pinned', [SETS]: 'web' })
    const expected = { 'io.cri-containerd.image': 'managed', [PIN]: 'pinned', [SETS]: 'web' }
    assert.deepEqual(updated?.labels, expected)
    assert.equal(updated?.target.digest, DIGEST)
    assert.deepEqual((await client.getImage(NAME))?.labels, expected)
    assert.deepEqual(fake.calls.filter((c) => c.method === 'Update'), [{ method: 'Update', namespace: NS }])
  })

  void test('overwrites a value and removes keys given as undefined', async () => {
    await client.updateImageLabels(NAME, { [PIN]: 'pinned', [SETS]: 'web' })
    const updated = await client.updateImageLabels(NAME, { [PIN]: undefined, [SETS]: 'web,db' })
    assert.deepEqual(updated?.labels, { 'io.cri-containerd.image': 'managed', [SETS]: 'web,db' })
  })

  void test('removing a label the image lacks changes nothing', async () => {
    const updated = await client.updateImageLabels(NAME, { [PIN]: undefined })
    assert.deepEqual(updated?.labels, { 'io.cri-containerd.image': 'managed' })
  })

  void test('no changes reads the image without an Update', async () => {
    const image = await client.updateImageLabels(NAME, {})
    assert.deepEqual(image?.labels, { 'io.cri-containerd.image': 'managed' })
    assert.deepEqual(fake.calls.map((c) => c.method), ['Get'])
  })

  void test('an unknown image resolves to undefined', async () => {
    assert.equal(await client.updateImageLabels('127.0.0.1:5001/test/none:v1', { [PIN]: 'pinned' }), undefined)
    assert.deepEqual((await client.getImage(NAME))?.labels, { 'io.cri-containerd.image': 'managed' })
  })

  void test('labels are per namespace', async () => {
    const other = new ContainerdClient({ socket: fake.socket, namespace: 'default', callTimeoutMs: 1000 })
    try {
      assert.equal(await other.updateImageLabels(NAME, { [PIN]: 'pinned' }), undefined)
    } finally {
      other.close()
    }
    assert.equal((await client.getImage(NAME))?.labels[PIN], undefined)
  })

  const badInputs: Array<[string, string, Record<string, string | undefined>]> = [
    ['an empty key', NAME, { '': 'x' }],
    ['a non-string value', NAME, { [PIN]: 1 as unknown as string }],
    ['a label over 4096 bytes', NAME, { [SETS]: 'x'.repeat(4096) }],
    ['an empty image name', '', { [PIN]: 'pinned' }],
  ]
  for (const [what, name, changes] of badInputs) {
    void test(`${what} throws a TypeError before any call`, async () => {
      await assert.rejects(client.updateImageLabels(name, changes), TypeError)
      assert.deepEqual(fake.calls, [])
    })
  }

  void test('an aborted signal rejects with its reason', async () => {
    const reason = new Error('stop')
    await assert.rejects(client.updateImageLabels(NAME, { [PIN]: 'pinned' }, AbortSignal.abort(reason)), (err) => err === reason)
  })
})
