// Issue 8, defect 9: the peer header was a fixed HMAC of the cluster key, so one captured request could be
// replayed forever. Each header is now signed for its request and accepted once, within the clock window.
import assert from 'node:assert/strict'
import type { IncomingMessage } from 'node:http'
import { describe, test } from 'node:test'
import { checkPeerRequest, peerToken } from '../../../src/p2p/peer-auth.js'
import { PEER_CLOCK_WINDOW_MS, PeerCredentials } from '../../../src/p2p/peer-credentials.js'

const KEY = new Uint8Array(32).fill(7)
const TARGET = '/v2/team/app/blobs/sha256:0123?ns=registry.test'

function peerRequest (header: string | undefined, method = 'GET', url = TARGET): IncomingMessage {
  return { method, url, headers: header === undefined ? {} : { 'x-flotilla-peer': header }, socket: { remoteAddress: '10.0.0.2' } } as unknown as IncomingMessage
}

/** A clock the test moves. */
function clock (start = 1_700_000_000_000): { now: () => number, advance: (ms: number) => void } {
  let t = start
  return { now: () => t, advance: (ms) => { t += ms } }
}

void describe('defect 9: peer credentials bound to the request', () => {
  test('defect 9: a request signed for its mode, method and target is accepted, in its mode', () => {
    const asker = peerToken(KEY)
    const agent = peerToken(KEY)
    assert.deepEqual(checkPeerRequest(peerRequest(asker.sign('owner', 'GET', TARGET)), agent, true), { ok: true, mode: 'owner' })
    assert.deepEqual(checkPeerRequest(peerRequest(asker.sign('local', 'HEAD', TARGET), 'HEAD'), agent, true), { ok: true, mode: 'local' })
  })

  test('defect 9: the same header on the same request again is refused (replay)', () => {
    const asker = peerToken(KEY)
    const agent = peerToken(KEY)
    const header = asker.sign('owner', 'GET', TARGET)
    assert.equal(checkPeerRequest(peerRequest(header), agent, true).ok, true)
    assert.deepEqual(checkPeerRequest(peerRequest(header), agent, true), { ok: false })
    // A header with the same nonce but another encoding of the same MAC bytes is the same request.
    const [mode, at, nonce, mac] = header.split(' ') as [string, string, string, string]
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
    const variant = `${mode} ${at} ${nonce} ${mac.slice(0, -1)}${alphabet[alphabet.indexOf(mac.slice(-1)) ^ 1] as string}`
    assert.notEqual(variant, header)
    assert.deepEqual(checkPeerRequest(peerRequest(variant), agent, true), { ok: false })
    // Each request the asker makes is signed afresh, so the next one goes through.
    assert.equal(checkPeerRequest(peerRequest(asker.sign('owner', 'GET', TARGET)), agent, true).ok, true)
  })

  test('defect 9: an old header, or one replayed after the window, is refused (injected clock)', () => {
    const t = clock()
    const asker = new PeerCredentials(KEY, { now: t.now })
    const agent = new PeerCredentials(KEY, { now: t.now })
    const used = asker.sign('owner', 'GET', TARGET)
    const kept = asker.sign('owner', 'GET', TARGET)
    assert.equal(agent.verify(used, 'GET', TARGET), 'owner')
    t.advance(PEER_CLOCK_WINDOW_MS + 1)
    assert.equal(agent.verify(used, 'GET', TARGET), undefined, 'a replay after the window')
    assert.equal(agent.verify(kept, 'GET', TARGET), undefined, 'a header never used, presented too late')
    const fromTheFuture = asker.sign('owner', 'GET', TARGET)
    t.advance(-2 * (PEER_CLOCK_WINDOW_MS + 1))
    assert.equal(agent.verify(fromTheFuture, 'GET', TARGET), undefined, 'a header stamped past the window ahead')
    // Within the window either side of our clock is fine (peers' clocks drift).
    const skewed = new PeerCredentials(KEY, { now: () => t.now() + PEER_CLOCK_WINDOW_MS - 1000 })
    assert.equal(agent.verify(skewed.sign('local', 'GET', TARGET), 'GET', TARGET), 'local')
  })

  test('defect 9: a header moved to another path, query, method or mode is refused', () => {
    const asker = peerToken(KEY)
    const moves: Array<[string, (h: string) => IncomingMessage]> = [
      ['another blob', (h) => peerRequest(h, 'GET', '/v2/team/app/blobs/sha256:4567?ns=registry.test')],
      ['another repository', (h) => peerRequest(h, 'GET', '/v2/other/app/blobs/sha256:0123?ns=registry.test')],
      ['another registry', (h) => peerRequest(h, 'GET', '/v2/team/app/blobs/sha256:0123?ns=private.example')],
      ['no query', (h) => peerRequest(h, 'GET', '/v2/team/app/blobs/sha256:0123')],
      ['HEAD', (h) => peerRequest(h, 'HEAD')],
      ['local turned owner', (h) => peerRequest(h.replace(/^local /, 'owner '))],
    ]
    for (const [name, moved] of moves) {
      const agent = peerToken(KEY)
      const header = asker.sign('local', 'GET', TARGET)
      assert.deepEqual(checkPeerRequest(moved(header), agent, true), { ok: false }, name)
      // Refusing it did not burn the nonce: the request it was made for still goes through.
      assert.equal(checkPeerRequest(peerRequest(header), agent, true).ok, true, name)
    }
  })

  test('defect 9: a header signed with another cluster key is refused', () => {
    const stranger = peerToken(new Uint8Array(32).fill(8))
    assert.deepEqual(checkPeerRequest(peerRequest(stranger.sign('owner', 'GET', TARGET)), peerToken(KEY), true), { ok: false })
    assert.deepEqual(checkPeerRequest(peerRequest(stranger.sign('owner', 'GET', TARGET)), undefined, false), { ok: false })
  })

  test('defect 9: malformed headers are refused without throwing', () => {
    const agent = peerToken(KEY)
    const good = peerToken(KEY).sign('local', 'GET', TARGET)
    const [, at, nonce, mac] = good.split(' ') as [string, string, string, string]
    const cases: Array<[string, string]> = [
      ['empty', ''],
      ['mode only', 'local'],
      ['the old fixed token', `local ${mac}`],
      ['a field missing', `local ${at} ${nonce}`],
      ['a field too many', `${good} x`],
      ['double space', good.replace(' ', '  ')],
      ['unknown mode', good.replace(/^local/, 'admin')],
      ['timestamp not a number', `local 1e12 ${nonce} ${mac}`],
      ['negative timestamp', `local -${at} ${nonce} ${mac}`],
      ['huge timestamp', `local ${'9'.repeat(400)} ${nonce} ${mac}`],
      ['short nonce', `local ${at} abc ${mac}`],
      ['nonce not base64url', `local ${at} ${'+'.repeat(22)} ${mac}`],
      ['short mac', `local ${at} ${nonce} ${mac.slice(1)}`],
      ['mac not base64url', `local ${at} ${nonce} ${'/'.repeat(43)}`],
      ['non-ASCII', `local ${at} ${nonce} ${'é'.repeat(43)}`],
      ['very long', `local ${'x'.repeat(100_000)}`],
      ['comma-joined duplicate headers', `${good}, ${good}`],
    ]
    for (const [name, header] of cases) {
      assert.deepEqual(checkPeerRequest(peerRequest(header), agent, true), { ok: false }, name)
    }
    const noTarget = { headers: { 'x-flotilla-peer': good }, socket: {} } as unknown as IncomingMessage
    assert.deepEqual(checkPeerRequest(noTarget, agent, true), { ok: false }, 'no method or url')
    assert.equal(agent.size, 0, 'nothing refused was remembered')
    assert.equal(checkPeerRequest(peerRequest(good), agent, true).ok, true)
  })

  test('defect 9: the replay cache is bounded and forgets what is out of the window', () => {
    const t = clock()
    const asker = new PeerCredentials(KEY, { now: t.now })
    const agent = new PeerCredentials(KEY, { now: t.now, maxNonces: 3 })
    const headers: string[] = []
    for (let i = 0; i < 5; i++) {
      const h = asker.sign('local', 'GET', TARGET)
      headers.push(h)
      assert.equal(agent.verify(h, 'GET', TARGET), 'local')
      assert.ok(agent.size <= 3, `size ${agent.size} after ${i + 1}`)
      t.advance(1)
    }
    // Dropped to keep the bound, the oldest nonces are still refused: nothing as old is accepted any more.
    for (const h of headers) assert.equal(agent.verify(h, 'GET', TARGET), undefined)
    // Out of the window, a nonce is forgotten (the clock refuses its replay).
    t.advance(PEER_CLOCK_WINDOW_MS + 1)
    assert.equal(agent.verify(asker.sign('local', 'GET', TARGET), 'GET', TARGET), 'local')
    assert.equal(agent.size, 1)
    for (const h of headers) assert.equal(agent.verify(h, 'GET', TARGET), undefined)
  })

  test('defect 9: options are validated when built', () => {
    assert.throws(() => new PeerCredentials(new Uint8Array(4)), TypeError)
    assert.throws(() => new PeerCredentials(KEY, { windowMs: 0 }), TypeError)
    assert.throws(() => new PeerCredentials(KEY, { maxNonces: 0 }), TypeError)
  })
})
