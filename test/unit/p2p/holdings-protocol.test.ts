import assert from 'node:assert/strict'
import { test } from 'node:test'
import { P2pError } from '../../../src/p2p/errors.js'
import { decodeHoldingsChunk, encodeHoldings, holdingsProtocol } from '../../../src/p2p/holdings-protocol.js'

const digest = (n: number): string => `sha256:${n.toString(16).padStart(64, '0')}`

void test('holdings round-trip in chunks of at most 64 KiB, ended by an empty chunk', () => {
  const keys = [...Array.from({ length: 3000 }, (_, i) => digest(i)), 'registry.example/team/app:v1.2']
  const chunks = encodeHoldings(keys)
  assert.equal(chunks.at(-1)?.byteLength, 0)
  assert.ok(chunks.length > 3, `${chunks.length} chunks`)
  for (const c of chunks.slice(0, -1)) assert.ok(c.byteLength > 0 && c.byteLength <= 64 * 1024, `chunk of ${c.byteLength}`)
  assert.deepEqual(chunks.slice(0, -1).flatMap((c) => decodeHoldingsChunk('p', c)), keys)
  assert.deepEqual(encodeHoldings([]).map((c) => c.byteLength), [0])
  assert.equal(holdingsProtocol('/flotilla'), '/flotilla/holdings/1.0.0')
})

void test('malformed holdings are refused with a typed error', () => {
  const bad = [new Uint8Array([0xff, 0xfe]), new TextEncoder().encode('a\n\nb'), new TextEncoder().encode('has space'), new TextEncoder().encode('k'.repeat(1025))]
  for (const bytes of bad) {
    assert.throws(() => decodeHoldingsChunk('p', bytes), (err: unknown) => err instanceof P2pError && err.code === 'ERR_PEER_HOLDINGS_INVALID')
  }
})
