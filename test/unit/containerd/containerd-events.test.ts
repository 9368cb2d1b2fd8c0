import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { parseContainerdEvent, readFields } from '../../../src/containerd/containerd-events.js'

// Payloads captured from containerd 1.6.20 (`ctr images pull` / `images rm` / `content rm`).
const IMAGE_CREATE = Buffer.from('0a1a3132372e302e302e313a353930312f746573742f696d673a7631', 'hex')
const IMAGE_UPDATE_WITH_LABELS = Buffer.from('0a1a3132372e302e302e313a353930312f746573742f696d673a763112220a17696f2e6372692d636f6e7461696e6572642e696d61676512076d616e61676564', 'hex')
const DIGEST = 'sha256:0b0604caee74a82d59d4a4fe0d6a4b8ca7a479b2f1b590fbbf4aa3928edef81f'

function envelope (topic: string, payload: Buffer): Parameters<typeof parseContainerdEvent>[0] {
  return { namespace: 'k8s.io', topic, typeUrl: '', payload }
}

void describe('parseContainerdEvent', () => {
  void test('image events carry the image name', () => {
    assert.deepEqual(parseContainerdEvent(envelope('/images/create', IMAGE_CREATE)), { kind: 'image-create', namespace: 'k8s.io', name: '127.0.0.1:5901/test/img:v1' })
    assert.deepEqual(parseContainerdEvent(envelope('/images/update', IMAGE_UPDATE_WITH_LABELS)), { kind: 'image-update', namespace: 'k8s.io', name: '127.0.0.1:5901/test/img:v1' })
    assert.deepEqual(parseContainerdEvent(envelope('/images/delete', IMAGE_CREATE)), { kind: 'image-delete', namespace: 'k8s.io', name: '127.0.0.1:5901/test/img:v1' })
  })

  void test('content events carry the digest (and size for create)', () => {
    const digest = Buffer.concat([Buffer.from([0x0a, DIGEST.length]), Buffer.from(DIGEST)])
    assert.deepEqual(parseContainerdEvent(envelope('/content/delete', digest)), { kind: 'content-delete', namespace: 'k8s.io', digest: DIGEST })
    const withSize = Buffer.concat([digest, Buffer.from([0x10, 0x80, 0x80, 0x80, 0x80, 0x10])])
    assert.deepEqual(parseContainerdEvent(envelope('/content/create', withSize)), { kind: 'content-create', namespace: 'k8s.io', digest: DIGEST, size: 2 ** 32 })
  })

  void test('other topics, empty and malformed payloads are ignored', () => {
    assert.equal(parseContainerdEvent(envelope('/snapshot/prepare', IMAGE_CREATE)), undefined)
    assert.equal(parseContainerdEvent(envelope('/images/create', Buffer.alloc(0))), undefined)
    assert.equal(parseContainerdEvent(envelope('/images/create', Buffer.from([0x0a, 0x05, 0x61]))), undefined)
    assert.equal(parseContainerdEvent(envelope('/images/create', Buffer.from([0x0b]))), undefined)
  })

  void test('readFields skips fixed-width fields', () => {
    const buf = Buffer.from([0x09, 1, 2, 3, 4, 5, 6, 7, 8, 0x15, 1, 2, 3, 4, 0x0a, 0x01, 0x78])
    assert.equal(readFields(buf).strings.get(1), 'x')
  })
})
