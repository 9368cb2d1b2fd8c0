import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { pino } from 'pino'
import type { Digest } from '../../../src/oci/index.js'
import { ChainedUpstream } from '../../../src/upstream/chained-upstream.js'
import { UpstreamError } from '../../../src/upstream/upstream-error.js'
import type { ManifestBody, Upstream } from '../../../src/upstream/upstream.js'

const DIGEST = `sha256:${'a'.repeat(64)}` as Digest

/** An upstream whose getManifest answers or throws as told, and counts its calls. */
function fake (name: string, outcome: 'ok' | UpstreamError | Error): Upstream & { calls: number, status: () => [] } {
  const unused = async (): Promise<never> => { throw new Error('unused') }
  const u = {
    calls: 0,
    has: () => true,
    getManifest: async (): Promise<ManifestBody> => {
      u.calls++
      if (outcome !== 'ok') throw outcome
      return { bytes: Buffer.from(name), digest: DIGEST, mediaType: 'x', size: name.length }
    },
    headManifest: unused, getBlob: unused, headBlob: unused, passThrough: unused, close: async () => {}, status: () => [] as [],
  }
  return u
}

const err = (code: ConstructorParameters<typeof UpstreamError>[0]): UpstreamError => new UpstreamError(code, `${code} from a test`, 'r.example')

describe('ChainedUpstream', () => {
  const cases: Array<[string, UpstreamError | Error | 'ok', string]> = [
    ['a mirror that answers serves', 'ok', 'm1'],
    ['unreachable → next', err('ERR_UPSTREAM_UNAVAILABLE'), 'endpoint'],
    ['timeout → next', err('ERR_UPSTREAM_TIMEOUT'), 'endpoint'],
    ['open circuit → next', err('ERR_UPSTREAM_CIRCUIT_OPEN'), 'endpoint'],
    ['401 → next', err('ERR_UPSTREAM_UNAUTHORIZED'), 'endpoint'],
    ['403 → next', err('ERR_UPSTREAM_DENIED'), 'endpoint'],
    ['404 → next (a mirror may lack what the registry has)', err('ERR_UPSTREAM_NOT_FOUND'), 'endpoint'],
  ]
  for (const [what, outcome, servedBy] of cases) {
    it(what, async () => {
      const m1 = fake('m1', outcome)
      const endpoint = fake('endpoint', 'ok')
      const results: string[] = []
      const chain = new ChainedUpstream({
        primary: endpoint, mirrors: new Map([['r.example', [{ name: 'm1', upstream: m1 }]]]), logger: pino({ level: 'silent' }),
        onResult: (link, _registry, result) => results.push(`${link} ${result}`),
      })
      const got = await chain.getManifest('r.example', 'repo', 'v1', 'x')
      assert.equal(got.bytes.toString(), servedBy)
      assert.equal(m1.calls, 1)
      assert.equal(endpoint.calls, servedBy === 'endpoint' ? 1 : 0)
      assert.equal(results.at(-1), `${servedBy} ok`)
    })
  }

  it('mirrors are tried in order; a registry without mirrors goes to its endpoint; the endpoint\'s error is the last word', async () => {
    const down = fake('m1', err('ERR_UPSTREAM_UNAVAILABLE'))
    const m2 = fake('m2', 'ok')
    const endpoint = fake('endpoint', err('ERR_UPSTREAM_NOT_FOUND'))
    const chain = new ChainedUpstream({ primary: endpoint, mirrors: new Map([['r.example', [{ name: 'm1', upstream: down }, { name: 'm2', upstream: m2 }]]]), logger: pino({ level: 'silent' }) })
    assert.equal((await chain.getManifest('r.example', 'repo', 'v1', 'x')).bytes.toString(), 'm2')
    await assert.rejects(chain.getManifest('other.example', 'repo', 'v1', 'x'), { code: 'ERR_UPSTREAM_NOT_FOUND' })
    assert.equal(endpoint.calls, 1)
  })

  it('an error that is not the registry\'s (a bug, an abort) is not passed over', async () => {
    const m1 = fake('m1', new Error('boom'))
    const endpoint = fake('endpoint', 'ok')
    const chain = new ChainedUpstream({ primary: endpoint, mirrors: new Map([['r.example', [{ name: 'm1', upstream: m1 }]]]), logger: pino({ level: 'silent' }) })
    await assert.rejects(chain.getManifest('r.example', 'repo', 'v1', 'x'), /boom/)
    assert.equal(endpoint.calls, 0)
  })
})
