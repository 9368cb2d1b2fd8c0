import assert from 'node:assert/strict'
import type { IncomingMessage } from 'node:http'
import type { Readable } from 'node:stream';
import { PassThrough } from 'node:stream'
import { describe, test } from 'node:test'
import type { BlobSourceAttempt } from '../../../src/mirror/blob-source.js'
import { checkPeerRequest, peerToken } from '../../../src/p2p/peer-auth.js'
import { hedge } from '../../../src/mirror/hedge.js'
import { rendezvousOwner } from '../../../src/p2p/rendezvous.js'

function attempt (origin: string, delayMs: number, opts: { fail?: boolean } = {}): BlobSourceAttempt & { opened: number, aborted: number, destroyed: number } {
  const a = {
    origin: { kind: 'peer', address: origin, role: 'holder' } as const, opened: 0, aborted: 0, destroyed: 0,
    open: async (_offset: number, signal: AbortSignal) => {
      a.opened++
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(resolve, delayMs)
        signal.addEventListener('abort', () => { clearTimeout(t); a.aborted++; reject(new Error('aborted')) }, { once: true })
      })
      if (opts.fail === true) throw new Error(`${origin} failed`)
      const body = new PassThrough()
      body.on('close', () => { a.destroyed++ })
      body.end(origin)
      return { body: body as Readable, totalSize: origin.length }
    },
  }
  return a
}

void describe('hedge', () => {
  test('a fast first source wins without starting the second', async () => {
    const a = attempt('a', 1)
    const b = attempt('b', 1)
    const r = await hedge(a, b, 200).open(0, new AbortController().signal)
    assert.equal(Buffer.concat(await r.body.toArray()).toString(), 'a')
    assert.equal(b.opened, 0)
  })

  test('a slow first source is raced against the second; the loser is aborted', async () => {
    const a = attempt('a', 5000)
    const b = attempt('b', 5)
    const r = await hedge(a, b, 20).open(0, new AbortController().signal)
    assert.equal(Buffer.concat(await r.body.toArray()).toString(), 'b')
    await new Promise((resolve) => setImmediate(resolve))
    assert.equal(a.aborted, 1)
  })

  test('a failing first source falls to the second at once', async () => {
    const a = attempt('a', 1, { fail: true })
    const b = attempt('b', 1)
    const r = await hedge(a, b, 10_000).open(0, new AbortController().signal)
    assert.equal(Buffer.concat(await r.body.toArray()).toString(), 'b')
  })

  test('both failing rejects', async () => {
    await assert.rejects(hedge(attempt('a', 1, { fail: true }), attempt('b', 1, { fail: true }), 5).open(0, new AbortController().signal))
  })
})

void describe('rendezvousOwner', () => {
  test('every node agrees, and removing a non-owner keeps the owner', () => {
    const ids = ['p1', 'p2', 'p3', 'p4', 'p5']
    for (let k = 0; k < 50; k++) {
      const key = `sha256:${k}`
      const owner = rendezvousOwner(key, ids)
      assert.equal(rendezvousOwner(key, [...ids].reverse()), owner)
      const other = ids.find((i) => i !== owner) as string
      assert.equal(rendezvousOwner(key, ids.filter((i) => i !== other)), owner)
    }
  })

  test('owners spread over the nodes', () => {
    const ids = ['p1', 'p2', 'p3', 'p4']
    const counts = new Map<string, number>()
    for (let k = 0; k < 400; k++) {
      const o = rendezvousOwner(`k${k}`, ids) as string
      counts.set(o, (counts.get(o) ?? 0) + 1)
    }
    for (const id of ids) assert.ok((counts.get(id) ?? 0) > 50, `${id} owns ${counts.get(id)}`)
  })

  test('no ids, no owner', () => {
    assert.equal(rendezvousOwner('k', []), undefined)
  })
})

void describe('checkPeerRequest', () => {
  const key = new Uint8Array(32).fill(7)
  const target = '/v2/team/app/blobs/sha256:0?ns=registry.test'
  const req = (remoteAddress: string, header?: string): IncomingMessage =>
    ({ method: 'GET', url: target, headers: header === undefined ? {} : { 'x-flotilla-peer': header }, socket: { remoteAddress } }) as unknown as IncomingMessage

  const cases: Array<[string, string, ((signer: ReturnType<typeof peerToken>) => string) | undefined, boolean, string | undefined]> = [
    ['loopback without credentials', '127.0.0.1', undefined, true, undefined],
    ['IPv6 loopback', '::1', undefined, true, undefined],
    ['remote without credentials', '10.0.0.2', undefined, false, undefined],
    ['remote with the right key, local', '10.0.0.2', (s) => s.sign('local', 'GET', target), true, 'local'],
    ['remote with the right key, owner', '10.0.0.2', (s) => s.sign('owner', 'GET', target), true, 'owner'],
    ['remote with a wrong key', '10.0.0.2', () => peerToken(new Uint8Array(32).fill(8)).sign('local', 'GET', target), false, undefined],
    ['unknown mode', '10.0.0.2', (s) => s.sign('local', 'GET', target).replace(/^local/, 'other'), false, undefined],
    ['loopback with a wrong credential', '127.0.0.1', () => 'local nope', false, undefined],
  ]
  for (const [name, addr, header, ok, mode] of cases) {
    test(name, () => {
      const signer = peerToken(key)
      const r = checkPeerRequest(req(addr, header?.(signer)), peerToken(key), true)
      assert.equal(r.ok, ok)
      if (ok) assert.equal(r.mode, mode)
    })
  }
})
