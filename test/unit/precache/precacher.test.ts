import assert from 'node:assert/strict'
import { afterEach, describe, it } from 'node:test'
import { pino } from 'pino'
import type { Digest } from '../../../src/oci/index.js'
import { parsePrecacheSpec, type PrecacheSpec } from '../../../src/precache/precache-spec.js'
import type { PrecacheImageStatus } from '../../../src/precache/precache-status.js'
import { Precacher, type ResolvedImageTag } from '../../../src/precache/precacher.js'
import type { WantedImage } from '../../../src/precache/precache-target.js'
import { waitFor } from '../../helpers/wait-for.js'
import { MemoryTarget } from './memory-target.js'

const logger = pino({ level: 'silent' })
const D1 = `sha256:${'1'.repeat(64)}` as Digest
const D2 = `sha256:${'2'.repeat(64)}` as Digest
const D3 = `sha256:${'3'.repeat(64)}` as Digest
const WEB = 'registry.example.com/team/web:v1'
const SIDECAR = `registry.example.com/team/sidecar@${D3}`
const EDGE = 'registry.example.com/team/edge:v1'

/** The YAML parsed as the agent would, with every set's refresh set to `refreshMs` (below the file's 1 s floor). */
function spec (yaml: string, refreshMs = 60_000): PrecacheSpec {
  return { sets: parsePrecacheSpec(yaml).sets.map((s) => ({ ...s, refreshMs })) }
}

const TWO_SETS = `
sets:
  - name: web
    images: [registry.example.com/team/web:v1, "registry.example.com/team/sidecar@${D3}"]
  - name: edge
    nodeSelector: { tier: edge }
    images: [registry.example.com/team/edge:v1]
`

interface Harness {
  readonly target: MemoryTarget
  readonly precacher: Precacher
  /** What each tag resolves to upstream; a thrown error is the upstream being out of reach. */
  readonly tags: Map<string, Digest | Error>
  image (key: string): PrecacheImageStatus | undefined
}

const running: Precacher[] = []
afterEach(async () => { await Promise.all(running.splice(0).map(async (p) => { await p.close() })) })

function harness (): Harness {
  const target = new MemoryTarget()
  const tags = new Map<string, Digest | Error>()
  const resolveTag = async (image: WantedImage): Promise<ResolvedImageTag> => {
    const d = tags.get(image.key)
    if (d instanceof Error) throw d
    if (d === undefined) throw new Error(`${image.key}: no such tag`)
    return { digest: d, confirmedAt: Date.now() }
  }
  const precacher = new Precacher({ target, resolveTag, logger, startJitterMs: 0, backoff: { initialMs: 20, maxMs: 100 } })
  running.push(precacher)
  return {
    target, precacher, tags,
    image: (key) => precacher.sets().flatMap((s) => s.images).find((i) => i.ref === key),
  }
}

async function untilReady (h: Harness, key: string, digest?: Digest): Promise<void> {
  await waitFor(() => {
    const i = h.image(key)
    return i?.phase === 'Ready' && (digest === undefined || i.digest === digest)
  }, { timeoutMs: 5000, intervalMs: 5, what: `${key} Ready${digest === undefined ? '' : ` at ${digest}`}` })
}

describe('Precacher', () => {
  it('pulls and pins the images of the sets that select the node, and nothing else', async () => {
    const h = harness()
    h.tags.set(WEB, D1)
    h.tags.set(EDGE, D2)
    h.target.registry.set(WEB, D1)
    h.target.registry.set(EDGE, D2)
    h.precacher.start()
    h.precacher.setNodeLabels({ tier: 'core' })
    h.precacher.setSpec(spec(TWO_SETS))
    await untilReady(h, WEB, D1)
    await untilReady(h, SIDECAR, D3)
    assert.equal(h.target.images.get(WEB)?.isPinned, true)
    assert.equal(h.target.images.get(WEB)?.sets, 'web')
    assert.equal(h.target.images.get(SIDECAR)?.digest, D3)
    const edge = h.precacher.sets().find((s) => s.name === 'edge')
    assert.deepEqual(edge, { name: 'edge', matches: false, refreshSeconds: 60, images: [] })
    assert.ok(!h.target.calls.some((c) => c.includes('edge')), h.target.calls.join('\n'))
    assert.deepEqual(h.precacher.counts(), [{ set: 'web', phase: 'Ready', count: 2 }, { set: 'edge', phase: 'Ready', count: 0 }].filter((c) => c.count > 0))
  })

  it('waits for the node labels before sets with a selector, and removes no pin meanwhile', async () => {
    const h = harness()
    h.tags.set(EDGE, D2)
    h.target.registry.set(EDGE, D2)
    // A pin of flotilla's from before a restart, on an image the edge set wants.
    h.target.images.set(EDGE, { digest: D2, isPinned: true, isOwnPin: true, sets: 'edge' })
    h.precacher.start()
    h.precacher.setSpec(spec(TWO_SETS))
    await new Promise((resolve) => setTimeout(resolve, 50))
    assert.ok(!h.target.calls.some((c) => c.startsWith('unpin')), 'unpinned while the labels were unknown')
    h.precacher.setNodeLabels({ tier: 'edge' })
    await untilReady(h, EDGE, D2)
    assert.ok(!h.target.calls.includes(`pull ${EDGE}`), 'pulled an image that was already there')
  })

  it('pulls a removed image again at once', async () => {
    const h = harness()
    h.tags.set(WEB, D1)
    h.target.registry.set(WEB, D1)
    h.precacher.start()
    h.precacher.setSpec(spec('sets: [{ name: web, images: [registry.example.com/team/web:v1] }]'))
    await untilReady(h, WEB)
    h.target.remove(WEB)
    await waitFor(() => h.target.images.get(WEB)?.isPinned === true, { timeoutMs: 2000, intervalMs: 5, what: 'the image back, pinned' })
    assert.equal(h.target.calls.filter((c) => c === `pull ${WEB}`).length, 2)
  })

  it('refreshes a tag: only a changed digest pulls', async () => {
    const h = harness()
    h.tags.set(WEB, D1)
    h.target.registry.set(WEB, D1)
    h.precacher.start()
    h.precacher.setSpec(spec('sets: [{ name: web, images: [registry.example.com/team/web:v1] }]', 30))
    await untilReady(h, WEB, D1)
    const inspections = (): number => h.target.calls.filter((c) => c === `inspect ${WEB}`).length
    const before = inspections()
    await waitFor(() => inspections() >= before + 3, { timeoutMs: 2000, intervalMs: 5, what: 'three refreshes' })
    assert.equal(h.target.calls.filter((c) => c === `pull ${WEB}`).length, 1, 'an unchanged tag was pulled again')
    h.tags.set(WEB, D2)
    h.target.registry.set(WEB, D2)
    await untilReady(h, WEB, D2)
    assert.equal(h.target.calls.filter((c) => c === `pull ${WEB}`).length, 2)
    assert.equal(h.target.images.get(WEB)?.isPinned, true)
  })

  it('with the upstream out of reach keeps what it holds: Ready, pinned, nothing pulled or unpinned, the error said', async () => {
    const h = harness()
    h.target.images.set(WEB, { digest: D1, isPinned: true, isOwnPin: true, sets: 'web' })
    h.tags.set(WEB, new Error('upstream unreachable'))
    h.target.failPulls = 'upstream unreachable'
    h.precacher.start()
    h.precacher.setSpec(spec('sets: [{ name: web, images: [registry.example.com/team/web:v1] }]', 30))
    await untilReady(h, WEB, D1)
    await new Promise((resolve) => setTimeout(resolve, 100))
    const status = h.image(WEB)
    assert.equal(status?.phase, 'Ready')
    assert.equal(status?.pinned, true)
    assert.match(status?.error ?? '', /tag not confirmed: upstream unreachable/)
    assert.ok(!h.target.calls.some((c) => c.startsWith('pull') || c.startsWith('unpin')), h.target.calls.join('\n'))
  })

  it('an image it cannot pull is Failed with the reason and retried with backoff; a bad reference fails alone', async () => {
    const h = harness()
    h.tags.set(WEB, D1)
    h.target.failPulls = 'connection refused'
    h.precacher.start()
    h.precacher.setSpec(spec('sets: [{ name: web, images: [registry.example.com/team/web:v1, "UPPER/Case::bad"] }]'))
    await waitFor(() => h.target.calls.filter((c) => c === `pull ${WEB}`).length >= 3, { timeoutMs: 3000, intervalMs: 5, what: 'retries' })
    assert.equal(h.image(WEB)?.phase, 'Failed')
    assert.equal(h.image(WEB)?.error, 'connection refused')
    const bad = h.image('UPPER/Case::bad')
    assert.equal(bad?.phase, 'Failed')
    assert.match(bad?.error ?? '', /not an image reference/)
    h.target.failPulls = undefined
    h.target.registry.set(WEB, D1)
    await untilReady(h, WEB, D1)
    assert.equal(h.image(WEB)?.error, null)
  })

  it('unpins what no set wants any more, and never a pin it did not set', async () => {
    const h = harness()
    h.tags.set(WEB, D1)
    h.target.registry.set(WEB, D1)
    const other = 'registry.example.com/team/other:v1'
    h.target.images.set(other, { digest: D2, isPinned: true, isOwnPin: false })
    h.precacher.start()
    h.precacher.setSpec(spec(`sets: [{ name: web, images: [registry.example.com/team/web:v1, "${SIDECAR}"] }]`))
    await untilReady(h, WEB)
    await untilReady(h, SIDECAR)
    // Someone else pinned the sidecar before flotilla did: flotilla adds only its set label.
    h.target.images.set(SIDECAR, { digest: D3, isPinned: true, isOwnPin: false, sets: 'web' })
    h.precacher.setSpec(spec('sets: [{ name: web, images: [] }]'))
    await waitFor(() => h.target.images.get(WEB)?.isPinned === false, { timeoutMs: 2000, intervalMs: 5, what: 'web unpinned' })
    await waitFor(() => h.target.images.get(SIDECAR)?.sets === undefined, { timeoutMs: 2000, intervalMs: 5, what: 'the sidecar\'s set label gone' })
    assert.equal(h.target.images.get(SIDECAR)?.isPinned, true, 'a pin flotilla did not set was removed')
    assert.equal(h.target.images.get(other)?.isPinned, true)
    assert.ok(!h.target.calls.includes(`unpin ${other}`))
    assert.deepEqual(h.precacher.sets()[0]?.images, [])
  })
})
