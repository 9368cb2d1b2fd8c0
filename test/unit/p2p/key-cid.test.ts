import assert from 'node:assert/strict'
import { test } from 'node:test'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { keyToCid } from '../../../src/p2p/key-cid.js'

const KEYS = [
  `sha256:${'0'.repeat(64)}`,
  'sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
  'docker.io/library/nginx:1.27',
  'ghcr.io/owner/repo:tag-with-ünïcödé',
]

void test('keyToCid is CIDv1, raw codec, sha2-256 of the key\'s UTF-8 bytes', async () => {
  for (const key of KEYS) {
    const expected = CID.createV1(raw.code, await sha256.digest(new TextEncoder().encode(key)))
    const cid = keyToCid(key)
    assert.equal(cid.version, 1)
    assert.equal(cid.code, 0x55)
    assert.equal(cid.multihash.code, 0x12)
    assert.ok(cid.equals(expected), key)
    assert.equal(cid.toString(), expected.toString())
  }
})

void test('keyToCid pins known values (regression: the mapping is the wire format between nodes)', () => {
  assert.equal(keyToCid('docker.io/library/nginx:1.27').toString(), 'bafkreidjmwqqyfjjblilfhfh7umgnxqykbaiwpfrl6yruo53xqx53mkyxu')
  assert.equal(keyToCid(KEYS[1]!).toString(), 'bafkreiadmttyx2evz34sjg4dwignwy3czu6dc72veqdgsysclc6ejgug7q')
})

void test('distinct keys map to distinct CIDs; empty key is refused', () => {
  const cids = new Set(KEYS.map(k => keyToCid(k).toString()))
  assert.equal(cids.size, KEYS.length)
  assert.throws(() => keyToCid(''), TypeError)
})
