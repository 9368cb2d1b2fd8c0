// Issue 8, defect 9 end to end: two agents on 127.0.0.1, agent A advertising a recording proxy as its peer
// address, so a real peer request from B to A is captured on the way. Sent again, byte for byte, it is
// refused; so is its header on another blob. Before the fix the replay was served (in owner mode, from
// A's upstream) for as long as the cluster key stayed the same.
import assert from 'node:assert/strict'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { generateClusterKey } from '../../src/p2p/cluster-key.js'
import { startCountingProxy, type CountingProxy, type ProxiedRequest } from '../helpers/counting-proxy.js'
import { startDistribution, type Distribution } from '../helpers/distribution.js'
import { startFlotilla, type FlotillaAgent } from '../helpers/flotilla-agent.js'
import { freePort } from '../helpers/free-port.js'
import { makeTempDir, type TempDir } from '../helpers/temp-dir.js'
import { waitFor } from '../helpers/wait-for.js'
import { pushBlob } from '../helpers/push-blob.js'

const REPO = 'peer/replay'
const PEER_HEADER = 'x-flotilla-peer'

void describe('defect 9: a captured peer request cannot be replayed', { timeout: 120_000 }, () => {
  let work: TempDir
  let registry: Distribution
  let proxy: CountingProxy
  let a: FlotillaAgent
  let b: FlotillaAgent

  before(async () => {
    work = await makeTempDir('peer-replay')
    const keyFile = join(work.path, 'cluster.key')
    await writeFile(keyFile, generateClusterKey(), { mode: 0o600 })
    registry = await startDistribution()
    const [aPort, aP2p, bP2p] = [await freePort(), await freePort(), await freePort()]
    // Peers reach A only through the proxy: every peer request to A is recorded there.
    proxy = await startCountingProxy({ upstreamUrl: `http://127.0.0.1:${aPort}` })
    const common = (p2pPort: number): string[] => ['--p2p-listen', `/ip4/127.0.0.1/tcp/${p2pPort}`, '--cluster-key-file', keyFile,
      '--registry', `${registry.host}=${registry.url}`, '--default-registry', registry.host]
    a = await startFlotilla({ port: aPort, args: [...common(aP2p), '--peer-address', new URL(proxy.url).host] })
    b = await startFlotilla({ args: [...common(bP2p), '--bootstrap', `/ip4/127.0.0.1/tcp/${aP2p}`] })
    await waitFor(async () => (await a.metric('flotilla_p2p_peers')) >= 1 && (await b.metric('flotilla_p2p_peers')) >= 1,
      { timeoutMs: 30_000, what: 'the two agents to see each other' })
  })

  after(async () => {
    await b?.stop()
    await a?.stop()
    await proxy?.close()
    await registry?.stop()
    await work?.cleanup()
  })

  /** Pulls fresh blobs through B until one is owned by A (rendezvous), so that B asks A for it: that request. */
  async function capturePeerRequest (): Promise<ProxiedRequest> {
    for (let i = 0; i < 32; i++) {
      const bytes = Buffer.from(`blob ${i} ${Date.now()} ${Math.random()}`)
      const digest = await pushBlob(registry.url, REPO, bytes)
      const res = await fetch(`${b.url}/v2/${REPO}/blobs/${digest}`, { signal: AbortSignal.timeout(20_000) })
      assert.equal(res.status, 200)
      assert.deepEqual(Buffer.from(await res.arrayBuffer()), bytes)
      const asked = proxy.requests.find((r) => r.headers[PEER_HEADER] !== undefined && r.path.endsWith(digest))
      if (asked !== undefined) return asked
    }
    throw new Error('B never asked A for a blob')
  }

  async function send (path: string, header: string, method = 'GET'): Promise<{ status: number, body: string }> {
    const res = await fetch(`${a.url}${path}`, { method, headers: { [PEER_HEADER]: header }, signal: AbortSignal.timeout(20_000) })
    return { status: res.status, body: await res.text() }
  }

  test('defect 9: a real peer request replayed to the agent is refused with 401 and an OCI error', async () => {
    const captured = await capturePeerRequest()
    const header = captured.headers[PEER_HEADER]
    assert.equal(typeof header, 'string')
    assert.equal(captured.status, 200, 'the original peer request was served')
    assert.match(header as string, /^owner /, 'B asked A as the digest\'s owner')
    const replay = await send(`${captured.path}${captured.search}`, header as string)
    assert.equal(replay.status, 401, `replay answered ${replay.status}: ${replay.body.slice(0, 200)}`)
    const doc = JSON.parse(replay.body) as { errors?: Array<{ code: string, message: string }> }
    assert.equal(doc.errors?.[0]?.code, 'UNAUTHORIZED')
    assert.ok((doc.errors?.[0]?.message ?? '').length > 0)
    // The header on another blob (one A has never seen) is refused too: it was signed for its own target.
    const other = await pushBlob(registry.url, REPO, Buffer.from(`never asked ${Math.random()}`))
    const moved = await send(`/v2/${REPO}/blobs/${other}${captured.search}`, header as string)
    assert.equal(moved.status, 401, `moved header answered ${moved.status}`)
  })
})
