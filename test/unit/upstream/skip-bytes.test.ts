import assert from 'node:assert/strict'
import { Readable } from 'node:stream'
import { buffer } from 'node:stream/consumers'
import { describe, test } from 'node:test'
import { skipBytes } from '../../../src/upstream/skip-bytes.js'

void describe('skipBytes', { timeout: 5000 }, () => {
  void test('drops exactly the first bytes, across chunk boundaries', async () => {
    const chunks = ['ab', 'cde', 'f', 'ghij'].map((s) => Buffer.from(s))
    for (const [count, expected] of [[0, 'abcdefghij'], [2, 'cdefghij'], [4, 'efghij'], [6, 'ghij'], [10, ''], [12, '']] as const) {
      const out = await buffer(skipBytes(Readable.from(chunks), count))
      assert.equal(out.toString(), expected, `skip ${count}`)
    }
  })

  void test('destroying the result destroys the source', async () => {
    const source = new Readable({ read () {} })
    const skipped = skipBytes(source, 1)
    skipped.on('error', () => {})
    skipped.destroy()
    // Not events.once: it would reject on the source's own (expected) error event.
    await new Promise((resolve) => source.once('close', resolve))
    assert.equal(source.destroyed, true)
  })
})
