// The peer client reads a peer's answer with the shared HTTP helpers: a manifest is read bounded (an oversized
// one is not buffered to its end), and a 206 is taken only with a strict Content-Range for the offset asked.
import assert from 'node:assert/strict'
import { createServer, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, before, describe, test } from 'node:test'
import { pino } from 'pino'
import { Agent, type Dispatcher } from 'undici'
import type { MirrorRequest } from '../../../src/mirror/mirror.js'
import { MAX_MANIFEST_BYTES, type Digest } from '../../../src/oci/index.js'
import { MemoryRouterNetwork } from '../../../src/p2p/memory-router.js'
import { PEER_DISPATCHER_DEFAULTS, PeerContent, PeerFetchError } from '../../../src/p2p/peer-content.js'
import { PeerCredentials } from '../../../src/p2p/peer-credentials.js'

const digest = `sha256:${'a'.repeat(64)}` as Digest
const req: MirrorRequest = { registry: 'registry.test', repository: 'team/app', signal: new AbortController().signal }

/** A peer whose every answer the test decides; it records whether each response was written to its end. */
async function startPeer (answer: (url: string, res: ServerResponse) => void): Promise<{ server: Server, address: string, finished: boolean[] }> {
  const finished: boolean[] = []
  const server = createServer((request, res) => {
    const i = finished.push(false) - 1
    res.on('finish', () => { finished[i] = true })
    answer(request.url ?? '', res)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return { server, address: `127.0.0.1:${(server.address() as AddressInfo).port}`, finished }
}

async function peerContentOf (address: string, dispatcher: Dispatcher): Promise<PeerContent> {
  const network = new MemoryRouterNetwork()
  const self = network.join({ id: 'self', httpAddress: '127.0.0.1:1' })
  await network.join({ id: 'holder', httpAddress: address }).advertise([digest])
  return new PeerContent({ router: self, dispatcher, credentials: new PeerCredentials(new Uint8Array(32).fill(1)), logger: pino({ level: 'silent' }), isOwnerRouting: false, findBudgetMs: 1000 })
}

void describe('a peer manifest is read bounded', () => {
  let peer: Awaited<ReturnType<typeof startPeer>>
  let content: PeerContent
  const dispatcher = new Agent(PEER_DISPATCHER_DEFAULTS)
  let size = 0
  before(async () => {
    peer = await startPeer((_url, res) => {
      res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' })
      // Written as the client reads: a client that stops reading stops the writes.
      let left = size
      const write = (): void => {
        while (left > 0) {
          const n = Math.min(left, 64 * 1024)
          left -= n
          if (!res.write(Buffer.alloc(n, 0x20))) { res.once('drain', write); return }
        }
        res.end()
      }
      res.on('close', () => { left = 0 })
      write()
    })
    content = await peerContentOf(peer.address, dispatcher)
  })
  after(async () => {
    await dispatcher.close()
    peer.server.closeAllConnections()
    await new Promise((resolve) => peer.server.close(resolve))
  })

  const cases: Array<[string, number, boolean]> = [
    ['a manifest of the largest size allowed is taken', MAX_MANIFEST_BYTES, true],
    ['a larger one is refused before it is read to its end', 16 * MAX_MANIFEST_BYTES, false],
  ]
  for (const [name, bytes, isTaken] of cases) {
    test(name, { timeout: 15_000 }, async () => {
      size = bytes
      const got = await content.manifest(req, { kind: 'digest', digest }, '*/*', false)
      assert.equal(got?.bytes.byteLength, isTaken ? bytes : undefined)
      if (isTaken) assert.equal(got?.mediaType, 'application/vnd.oci.image.manifest.v1+json')
      await new Promise((resolve) => setTimeout(resolve, 50))
      assert.equal(peer.finished.at(-1), isTaken, 'the peer wrote the whole answer')
    })
  }
})

void describe('a 206 from a peer needs a strict Content-Range for the offset asked', () => {
  let peer: Awaited<ReturnType<typeof startPeer>>
  let content: PeerContent
  const dispatcher = new Agent(PEER_DISPATCHER_DEFAULTS)
  let contentRange: string | undefined
  before(async () => {
    peer = await startPeer((_url, res) => {
      res.writeHead(206, { 'content-length': '90', ...(contentRange === undefined ? {} : { 'content-range': contentRange }) })
      res.end(Buffer.alloc(90, 1))
    })
    content = await peerContentOf(peer.address, dispatcher)
  })
  after(async () => {
    await dispatcher.close()
    peer.server.closeAllConnections()
    await new Promise((resolve) => peer.server.close(resolve))
  })

  const cases: Array<[string | undefined, number | undefined]> = [
    ['bytes 10-99/100', 100],
    ['bytes 10-99/*', undefined],
    ['bytes 5-94/100', -1],
    ['bytes 10-99/50', -1],
    ['bytes 10-99/abc/100', -1],
    ['items 10-99/100', -1],
    [undefined, -1],
  ]
  for (const [value, total] of cases) {
    test(`Content-Range ${value ?? '(none)'} for bytes from 10: ${total === -1 ? 'refused' : `total ${total}`}`, { timeout: 15_000 }, async () => {
      contentRange = value
      const { first } = await content.blobSources(req, digest)
      const open = first[0]?.open(10, req.signal)
      assert.ok(open !== undefined, 'the holder is a source')
      if (total === -1) {
        await assert.rejects(open, PeerFetchError)
        return
      }
      const opened = await open
      assert.equal(opened.totalSize, total)
      assert.equal(Buffer.concat(await opened.body.toArray()).byteLength, 90)
    })
  }
})

void describe('the patient lookup goes ahead once a provider answered', () => {
  test('a DHT walk that goes on after the holder was found does not hold the client up', { timeout: 15_000 }, async () => {
    const body = Buffer.from('{"schemaVersion":2}')
    const peer = await startPeer((_url, res) => {
      res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' })
      res.end(body)
    })
    const dispatcher = new Agent(PEER_DISPATCHER_DEFAULTS)
    try {
      const network = new MemoryRouterNetwork()
      const self = network.join({ id: 'self', httpAddress: '127.0.0.1:1' })
      await network.join({ id: 'holder', httpAddress: peer.address }).advertise([digest])
      // Yields the holder at once, then walks on until the lookup's budget ends.
      const walking = Object.assign(Object.create(self) as typeof self, {
        findProviders: async function * (key: string, options: { signal: AbortSignal }) {
          yield * self.findProviders(key, options)
          await new Promise((resolve) => options.signal.addEventListener('abort', resolve, { once: true }))
        },
      })
      const content = new PeerContent({ router: walking, dispatcher, credentials: new PeerCredentials(new Uint8Array(32).fill(1)), logger: pino({ level: 'silent' }), isOwnerRouting: false, fallbackFindMs: 5000 })
      const started = Date.now()
      const got = await content.manifest(req, { kind: 'digest', digest }, '*/*', true)
      assert.deepEqual(got?.bytes, body)
      assert.ok(Date.now() - started < 2000, `answered after ${Date.now() - started} ms, not at the end of the 5 s walk`)
    } finally {
      await dispatcher.close()
      peer.server.closeAllConnections()
      await new Promise((resolve) => peer.server.close(resolve))
    }
  })
})
