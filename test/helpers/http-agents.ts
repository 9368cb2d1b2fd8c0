// Shared by the tests that run several agents in one process (real HTTP servers on one MemoryRouter network).
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Readable } from 'node:stream'
import type { Agent } from 'undici'
import { rendezvousOwner } from '../../src/p2p/rendezvous.js'
import type { Upstream } from '../../src/upstream/upstream.js'
import { blobOnlyUpstream } from './blob-only-upstream.js'

/** Listens on a free loopback port; the `host:port` the server answers on. */
export async function listenOnLoopback (server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return `127.0.0.1:${(server.address() as AddressInfo).port}`
}

/** Closes each agent's peer connections and its server (connections first, so close does not wait on them). */
export async function closeAgents (agents: Array<{ readonly dispatcher: Agent, readonly server: Server }>): Promise<void> {
  for (const a of agents.splice(0)) {
    await a.dispatcher.close()
    a.server.closeAllConnections()
    await new Promise((resolve) => a.server.close(resolve))
  }
}

/** An id `<prefix>-<n>` that is the rendezvous owner of `key` among itself and `others`. */
export function ownerId (key: string, prefix: string, others: readonly string[]): string {
  for (let n = 0; ; n++) {
    const id = `${prefix}-${n}`
    if (rendezvousOwner(key, [id, ...others]) === id) return id
  }
}

/**
 * An upstream holding one blob, which it streams in `chunkBytes` pieces every `delayMs` (so that pulls
 * overlap), from the offset asked; `onGet` hears every GET, other digests are not found.
 */
export function slowBlobUpstream (blob: Buffer, digest: string, o: { chunkBytes: number, delayMs: number, onGet: (digest: string) => void }): Upstream {
  return blobOnlyUpstream(async (_registry, _repository, d, offset = 0) => {
    o.onGet(d)
    if (d !== digest) throw Object.assign(new Error('not found'), { code: 'ERR_UPSTREAM_NOT_FOUND' })
    async function * chunks (): AsyncGenerator<Buffer> {
      for (let pos = offset; pos < blob.byteLength; pos += o.chunkBytes) {
        await new Promise((resolve) => setTimeout(resolve, o.delayMs))
        yield blob.subarray(pos, Math.min(blob.byteLength, pos + o.chunkBytes))
      }
    }
    return { status: offset > 0 ? 206 : 200, body: Readable.from(chunks()), length: blob.byteLength - offset, totalSize: blob.byteLength }
  })
}
