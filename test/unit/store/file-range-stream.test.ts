import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { open, writeFile } from 'node:fs/promises'
import { createServer, request, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { PassThrough } from 'node:stream'
import { after, before, describe, it } from 'node:test'
import type { ZeroCopy } from '../../../src/http/sendable.js'
import { loadZeroCopy } from '../../../src/native/native-zero-copy.js'
import { FileRangeStream } from '../../../src/store/file-range-stream.js'
import { makeTempDir, type TempDir } from '../../helpers/temp-dir.js'

const SIZE = 5 * (1 << 20) + 12_345
const BIG = 64 << 20

function sha256 (bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex')
}

/** GETs `path` from the server and returns the body (or the error when the response breaks). */
async function fetchBody (server: Server, path: string, options: { abortAfterBytes?: number } = {}): Promise<Buffer> {
  const { port } = server.address() as AddressInfo
  return await new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path }, (res) => {
      const chunks: Buffer[] = []
      let received = 0
      res.on('data', (c: Buffer) => {
        chunks.push(c)
        received += c.byteLength
        if (options.abortAfterBytes !== undefined && received >= options.abortAfterBytes) {
          req.destroy()
          resolve(Buffer.concat(chunks))
        }
      })
      res.on('end', () => { resolve(Buffer.concat(chunks)) })
      res.on('error', reject)
    })
    req.on('error', reject)
    req.setTimeout(10_000, () => { req.destroy(new Error('client timeout')) })
    req.end()
  })
}

/** The addon, which `npm ci` builds on every machine the tests run on: a missing one fails here. */
function nativeZeroCopy (): ZeroCopy {
  const zc = loadZeroCopy()
  if (zc instanceof Error) throw new Error(`native addon not loaded (npm ci builds it): ${zc.message}`)
  return zc
}

/** Counts the sends the addon took on (it declines what is not a plain socket). */
function counting (zc: ZeroCopy): ZeroCopy & { taken: number } {
  const counter = {
    taken: 0,
    send (...args: Parameters<ZeroCopy['send']>) {
      const sending = zc.send(...args)
      if (sending !== undefined) counter.taken++
      return sending
    },
  }
  return counter
}

for (const mode of ['JavaScript', 'sendfile'] as const) describe(`FileRangeStream (${mode})`, () => {
  const zeroCopy = mode === 'sendfile' ? counting(nativeZeroCopy()) : undefined
  let dir: TempDir
  let path: string
  let bytes: Buffer
  let server: Server
  const outcomes: Array<Promise<unknown>> = []

  before(async () => {
    dir = await makeTempDir('file-range')
    path = join(dir.path, 'blob')
    bytes = randomBytes(SIZE)
    await writeFile(path, bytes)
    await writeFile(join(dir.path, 'big'), Buffer.alloc(BIG, 3))
    // /<start>/<end> serves that inclusive range with sendTo (/big/<start>/<end> of the big file); the
    // outcome of each send is kept for the tests.
    server = createServer((req, res) => {
      const isBig = (req.url ?? '').startsWith('/big/')
      const [, start, end] = (req.url ?? '').replace(/^\/big/, '').split('/').map(Number)
      outcomes.push((async () => {
        const fh = await open(isBig ? join(dir.path, 'big') : path, 'r')
        const stream = new FileRangeStream(fh, isBig ? BIG : SIZE, start, end)
        res.writeHead(200, { 'content-length': String((end ?? 0) - (start ?? 0) + 1) })
        let sent = 0
        try {
          await stream.sendTo(res, (n) => { sent += n }, zeroCopy)
          return { ok: true, sent, fd: fh.fd }
        } catch (err) {
          return { ok: false, err, fd: fh.fd, isDestroyed: stream.destroyed }
        }
      })())
    }).listen(0, '127.0.0.1')
    await new Promise((resolve) => server.once('listening', resolve))
  })

  after(async () => {
    server.close()
    await dir.cleanup()
  })

  it('sends a whole file and ranges byte for byte, many at once, though its buffers are reused', async () => {
    const cases = [[0, SIZE - 1], [1, SIZE - 2], [(1 << 20) - 1, (1 << 20)], [SIZE - 1, SIZE - 1], [12, 3 * (1 << 20) + 7]] as const
    // Twelve concurrent sends share the buffer pool; any buffer reused before its bytes left would show here.
    const requests = Array.from({ length: 12 }, (_, i) => cases[i % cases.length] ?? [0, 0])
    const bodies = await Promise.all(requests.map(async ([s, e]) => await fetchBody(server, `/${s}/${e}`)))
    for (const [i, [s, e]] of requests.entries()) {
      assert.equal(sha256(bodies[i] ?? Buffer.alloc(0)), sha256(bytes.subarray(s, e + 1)), `range ${s}-${e}`)
    }
    const results = await Promise.all(outcomes.splice(0)) as Array<{ ok: boolean, sent: number }>
    assert.deepEqual(results.map((r) => r.ok), requests.map(() => true))
    assert.deepEqual(results.map((r) => r.sent).sort((a, b) => a - b), requests.map(([s, e]) => e - s + 1).sort((a, b) => a - b))
    // Ranges of 256 KiB or more went by sendfile: 7 of the 12; the small ones through JavaScript.
    if (zeroCopy !== undefined) assert.equal(zeroCopy.taken, requests.filter(([s, e]) => e - s + 1 >= 256 << 10).length)
  })

  it('rejects when the client goes away before the last byte, and closes the file', async () => {
    // Far more than loopback's socket buffers hold (sendfile would otherwise hand the kernel every byte).
    const body = await fetchBody(server, `/big/0/${BIG - 1}`, { abortAfterBytes: 1 << 20 })
    assert.ok(body.byteLength < BIG)
    const [outcome] = await Promise.all(outcomes.splice(0)) as Array<{ ok: boolean, fd: number, isDestroyed: boolean }>
    assert.equal(outcome?.ok, false)
    assert.equal(outcome?.isDestroyed, true)
  })

  it('reads as a plain Readable, and a file shorter than its range is an error, never a short body', async () => {
    const fh = await open(path, 'r')
    const chunks: Buffer[] = []
    for await (const c of new FileRangeStream(fh, SIZE, 100, 2_000_099)) chunks.push(c as Buffer)
    assert.equal(sha256(Buffer.concat(chunks)), sha256(bytes.subarray(100, 2_000_100)))

    const short = join(dir.path, 'short')
    await writeFile(short, bytes.subarray(0, 1000))
    // The handle claims 2000 bytes (as a size taken before a truncation would).
    const truncated = new FileRangeStream(await open(short, 'r'), 2000)
    await assert.rejects(async () => { for await (const c of truncated) assert.ok(c) }, /file ended at byte 1000/)
    const sink = new PassThrough()
    sink.resume()
    await assert.rejects(new FileRangeStream(await open(short, 'r'), 2000).sendTo(sink, undefined, zeroCopy), /file ended at byte 1000/)
  })

  it('refuses a bad range and a second consumer', async () => {
    const fh = await open(path, 'r')
    assert.throws(() => new FileRangeStream(fh, SIZE, -1, 10), RangeError)
    assert.throws(() => new FileRangeStream(fh, SIZE, 10, 5), RangeError)
    const stream = new FileRangeStream(fh, SIZE, 0, 10)
    stream.resume()
    await assert.rejects(stream.sendTo(new PassThrough()), /already being read/)
    stream.destroy()
  })
})

describe('FileRangeStream with sendfile, where JavaScript would not see it', () => {
  let dir: TempDir
  let path: string
  const bytes = randomBytes(SIZE)

  before(async () => {
    dir = await makeTempDir('file-range-native')
    path = join(dir.path, 'blob')
    await writeFile(path, bytes)
  })
  after(async () => { await dir.cleanup() })

  /** A server answering every request with `serve` (cutting the response when it fails, as the edge does); the outcome is the first one's. */
  async function withServer (serve: (res: ServerResponse) => Promise<void>, client: (port: number) => Promise<void>): Promise<unknown> {
    let outcome: Promise<unknown> = Promise.resolve('no request')
    const server = createServer((_req, res) => {
      outcome = serve(res).then(() => 'sent', (err: unknown) => {
        res.destroy()
        return err
      })
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    try {
      await client((server.address() as AddressInfo).port)
      return await outcome
    } finally {
      server.closeAllConnections()
      server.close()
    }
  }

  it('fails a file shorter than its range with the byte it ended at, after the bytes it had', async () => {
    const short = join(dir.path, 'short-native')
    await writeFile(short, bytes.subarray(0, 1 << 20))
    const outcome = await withServer(async (res) => {
      res.writeHead(200, { 'content-length': String(2 << 20) })
      await new FileRangeStream(await open(short, 'r'), 2 << 20).sendTo(res, undefined, nativeZeroCopy())
    }, async (port) => {
      const body = await fetchBody({ address: () => ({ port }) } as unknown as Server, '/').catch((err: unknown) => err)
      assert.ok(!(body instanceof Buffer && body.byteLength === 2 << 20), 'the client must not get a whole body')
    })
    assert.match(String(outcome), /file ended at byte 1048576/)
  })

  it('leaves a response without a declared length (chunked) to JavaScript, whose framing the client gets right', async () => {
    const zc = counting(nativeZeroCopy())
    let body: Buffer | undefined
    const outcome = await withServer(async (res) => {
      await new FileRangeStream(await open(path, 'r'), SIZE).sendTo(res, undefined, zc)
    }, async (port) => {
      body = await fetchBody({ address: () => ({ port }) } as unknown as Server, '/')
    })
    assert.equal(outcome, 'sent')
    assert.equal(zc.taken, 0)
    assert.equal(sha256(body ?? Buffer.alloc(0)), sha256(bytes))
  })

  it('stops at once when the stream is destroyed while the client reads nothing, and the client sees the cut', async () => {
    let stream: FileRangeStream | undefined
    let cut = false
    const big = join(dir.path, 'big')
    await writeFile(big, Buffer.alloc(64 << 20, 7))
    const outcome = await withServer(async (res) => {
      res.writeHead(200, { 'content-length': String(64 << 20) })
      stream = new FileRangeStream(await open(big, 'r'), 64 << 20)
      await stream.sendTo(res, undefined, nativeZeroCopy())
    }, async (port) => {
      const { connect } = await import('node:net')
      const socket = connect(port, '127.0.0.1')
      socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n')
      // Once bytes flow, the client stops reading: the socket buffers fill, and the addon's thread waits for
      // room. Destroying the stream must end it.
      await new Promise((resolve) => socket.once('data', resolve))
      socket.pause()
      stream?.destroy()
      await new Promise<void>((resolve) => {
        socket.on('close', () => { cut = true; resolve() })
        socket.resume()
      })
    })
    assert.match(String(outcome), /destroyed while sending/)
    assert.ok(cut)
  })
})
