// Range serving in the handler (issue 8, defect 14), on the in-memory adapters: a cached blob and one still
// coming from the upstream, with the unknown-unit rule of defect 3.
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { Readable } from 'node:stream'
import { after, before, describe, test } from 'node:test'
import { request } from 'undici'
import type { Digest } from '../../../src/oci/index.js'
import { blobOnlyUpstream } from '../../helpers/blob-only-upstream.js'
import { startHandlerServer, type HandlerServer } from './handler-server.js'

function blobOf (size: number, seed: number): { bytes: Buffer, digest: Digest } {
  const bytes = Buffer.alloc(size)
  for (let i = 0; i < size; i++) bytes[i] = (i * seed) % 251
  return { bytes, digest: `sha256:${createHash('sha256').update(bytes).digest('hex')}` as Digest }
}

const cached = blobOf(100_000, 7919)
const remote = blobOf(300_000, 104_729)

async function get (url: string, headers: Record<string, string> = {}, method: 'GET' | 'HEAD' = 'GET'): Promise<{ status: number, headers: Record<string, string | string[] | undefined>, body: Buffer }> {
  const res = await request(url, { method, headers, headersTimeout: 10_000, bodyTimeout: 10_000 })
  return { status: res.statusCode, headers: res.headers, body: Buffer.from(await res.body.arrayBuffer()) }
}

void describe('the handler serves Range requests (defect 14)', () => {
  let h: HandlerServer
  before(async () => {
    // The remote blob arrives in 16 KiB chunks, so a ranged read may be served while it is still downloading.
    h = await startHandlerServer(blobOnlyUpstream(async (_registry, _repository, digest, offset = 0) => {
      if (digest !== remote.digest) throw Object.assign(new Error('not found'), { code: 'ERR_UPSTREAM_NOT_FOUND' })
      const chunks: Buffer[] = []
      for (let p = offset; p < remote.bytes.byteLength; p += 16_384) chunks.push(remote.bytes.subarray(p, Math.min(p + 16_384, remote.bytes.byteLength)))
      return { status: offset > 0 ? 206 : 200, body: Readable.from(chunks), length: remote.bytes.byteLength - offset, totalSize: remote.bytes.byteLength }
    }))
    const w = await h.store.begin(cached.digest, cached.bytes.byteLength)
    await w.write(cached.bytes)
    await w.commit()
  })
  after(async () => { await h?.close() })

  for (const [what, blob] of [['a cached blob', cached], ['a blob fetched from the upstream', remote]] as const) {
    const size = blob.bytes.byteLength
    const url = (): string => `${h.url}/v2/team/app/blobs/${blob.digest}`

    test(`defect 14: ${what}: bytes=a-b → 206, Content-Range, exactly those bytes`, async () => {
      const r = await get(url(), { range: 'bytes=1000-1999' })
      assert.equal(r.status, 206)
      assert.equal(r.headers['content-range'], `bytes 1000-1999/${size}`)
      assert.equal(r.headers['content-length'], '1000')
      assert.ok(r.body.equals(blob.bytes.subarray(1000, 2000)), 'the bytes of the range')
    })

    test(`defect 14: ${what}: open and past-the-end ranges are clipped to the blob`, async () => {
      const open = await get(url(), { range: `bytes=${size - 10}-` })
      assert.equal(open.status, 206)
      assert.equal(open.headers['content-range'], `bytes ${size - 10}-${size - 1}/${size}`)
      assert.ok(open.body.equals(blob.bytes.subarray(size - 10)))
      const past = await get(url(), { range: `bytes=5-${size * 2}` })
      assert.equal(past.status, 206)
      assert.equal(past.headers['content-range'], `bytes 5-${size - 1}/${size}`)
      assert.ok(past.body.equals(blob.bytes.subarray(5)))
    })

    test(`defect 14: ${what}: a suffix range is the last N bytes`, async () => {
      const r = await get(url(), { range: 'bytes=-500' })
      assert.equal(r.status, 206)
      assert.equal(r.headers['content-range'], `bytes ${size - 500}-${size - 1}/${size}`)
      assert.ok(r.body.equals(blob.bytes.subarray(size - 500)))
      const whole = await get(url(), { range: `bytes=-${size + 10}` })
      assert.equal(whole.status, 206)
      assert.ok(whole.body.equals(blob.bytes))
    })

    test(`defect 14: ${what}: an unsatisfiable range → 416 with Content-Range: bytes */size`, async () => {
      for (const range of [`bytes=${size}-`, `bytes=${size + 5}-${size + 10}`, 'bytes=-0', 'bytes=9-3', 'bytes=x-y']) {
        const r = await get(url(), { range })
        assert.equal(r.status, 416, range)
        assert.equal(r.headers['content-range'], `bytes */${size}`, range)
        assert.equal((JSON.parse(r.body.toString()) as { errors: Array<{ code: string }> }).errors[0]?.code, 'RANGE_INVALID')
      }
    })

    test(`defect 3: ${what}: a range in an unknown unit is ignored → 200 with the whole body`, async () => {
      const r = await get(url(), { range: 'items=0-10' })
      assert.equal(r.status, 200)
      assert.equal(r.headers['content-range'], undefined)
      assert.equal(r.headers['content-length'], String(size))
      assert.ok(r.body.equals(blob.bytes))
    })

    test(`defect 14: ${what}: HEAD with a range answers the range's headers, no body`, async () => {
      const r = await get(url(), { range: 'bytes=0-99' }, 'HEAD')
      assert.equal(r.status, 206)
      assert.equal(r.headers['content-range'], `bytes 0-99/${size}`)
      assert.equal(r.headers['content-length'], '100')
      assert.equal(r.body.byteLength, 0)
    })
  }

  test('defect 14: no Range → 200, the whole blob, Accept-Ranges: bytes', async () => {
    const r = await get(`${h.url}/v2/team/app/blobs/${cached.digest}`)
    assert.equal(r.status, 200)
    assert.equal(r.headers['accept-ranges'], 'bytes')
    assert.ok(r.body.equals(cached.bytes))
  })
})
