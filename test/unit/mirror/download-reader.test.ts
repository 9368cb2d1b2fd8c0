import assert from 'node:assert/strict'
import { PassThrough, Readable, type Writable } from 'node:stream'
import { test } from 'node:test'
import type { Sendable, ZeroCopy } from '../../../src/http/sendable.js'
import { DownloadReader, type ReaderStep } from '../../../src/mirror/download-reader.js'

test('DownloadReader.sendTo hands the rest of a committed download, and the zero-copy sender, to the store stream', async () => {
  const zeroCopy: ZeroCopy = { send: () => undefined }
  const seen: Array<ZeroCopy | undefined> = []
  const rest = Object.assign(Readable.from([]), {
    sendTo: async (dest: Writable, _onSent?: (n: number) => void, zc?: ZeroCopy): Promise<void> => {
      seen.push(zc)
      dest.end(Buffer.from('rest'))
    },
  }) as Readable & Sendable
  const steps: ReaderStep[] = [{ kind: 'bytes', parts: [Buffer.from('head-')] }, { kind: 'stream', rest }]
  const reader = new DownloadReader(async () => steps.shift() ?? { kind: 'end' }, 1 << 16)
  const dest = new PassThrough()
  const body = dest.toArray()
  await reader.sendTo(dest, undefined, zeroCopy)
  assert.equal(Buffer.concat(await body).toString(), 'head-rest')
  assert.deepEqual(seen, [zeroCopy])
})
