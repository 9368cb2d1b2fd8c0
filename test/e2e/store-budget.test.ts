// Issue 10, the byte budget, end to end: a real agent (no containerd) in front of Distribution. With
// store.maxBytes 150MB, three 60 MB blobs pulled one after another leave the store within budget, the first
// evicted (a client reading it slowly all along still gets every byte); on a 64 MB tmpfs a 100 MB blob that
// meets a full disk is served whole and not kept, the store evicts to make room, and the next pull is kept.
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { readdir, readFile, stat } from 'node:fs/promises'
import { get, type IncomingMessage } from 'node:http'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { startDistribution, type Distribution } from '../helpers/distribution.js'
import { startFlotilla, type FlotillaAgent } from '../helpers/flotilla-agent.js'
import { pushBlob } from '../helpers/push-blob.js'
import { mountTmpfs, type TmpfsMount } from '../helpers/tmpfs-mount.js'
import { waitFor } from '../helpers/wait-for.js'

const MB = 1_000_000

function sha256 (b: Buffer): string {
  return `sha256:${createHash('sha256').update(b).digest('hex')}`
}

/** A blob through the agent, hashed as it streams: its digest and size. */
async function pull (agent: FlotillaAgent, repo: string, digest: string): Promise<{ digest: string, size: number }> {
  const res = await fetch(`${agent.url}/v2/${repo}/blobs/${digest}`, { signal: AbortSignal.timeout(120_000) })
  assert.equal(res.status, 200, `GET ${digest}`)
  const hash = createHash('sha256')
  let size = 0
  for await (const chunk of res.body ?? []) {
    hash.update(chunk as Uint8Array)
    size += (chunk as Uint8Array).byteLength
  }
  return { digest: `sha256:${hash.digest('hex')}`, size }
}

function blobPath (agent: FlotillaAgent, digest: string): string {
  return join(agent.dataDir, 'blobs', 'sha256', digest.slice('sha256:'.length))
}

async function isHeld (agent: FlotillaAgent, digest: string): Promise<boolean> {
  return await stat(blobPath(agent, digest)).then(() => true, () => false)
}

/** Bytes of the files under the agent's blobs/, and the names under tmp/. */
async function onDisk (agent: FlotillaAgent): Promise<{ blobBytes: number, blobs: string[], tmp: string[] }> {
  const dir = join(agent.dataDir, 'blobs', 'sha256')
  const blobs = await readdir(dir)
  let blobBytes = 0
  for (const name of blobs) blobBytes += (await stat(join(dir, name))).size
  return { blobBytes, blobs, tmp: await readdir(join(agent.dataDir, 'tmp')) }
}

/** A GET whose body the test reads a little of, then holds (paused: TCP pushes back on the agent). */
async function openSlowly (url: string): Promise<{ res: IncomingMessage, head: Buffer[] }> {
  const res = await new Promise<IncomingMessage>((resolve, reject) => { get(url, resolve).once('error', reject) })
  assert.equal(res.statusCode, 200)
  const head: Buffer[] = []
  await new Promise<void>((resolve, reject) => {
    res.once('error', reject)
    res.once('data', (chunk: Buffer) => { head.push(chunk); res.pause(); resolve() })
  })
  return { res, head }
}

void describe('store budget (issue 10)', () => {
  const REPO = 'e2e/store-budget'
  let registry: Distribution
  let agent: FlotillaAgent
  const blobs: Array<{ digest: string, bytes: Buffer }> = []

  before(async () => {
    registry = await startDistribution()
    for (let i = 0; i < 3; i++) {
      const bytes = randomBytes(60 * MB + i)
      blobs.push({ digest: await pushBlob(registry.url, REPO, bytes), bytes })
    }
    agent = await startFlotilla({
      configYaml: `registries:\n  "${registry.host}": { endpoint: "${registry.url}" }\ndefaultRegistry: "${registry.host}"\n` +
        // A reader paused for the whole test must not be cut for making no progress.
        'stallTimeout: 10m\nstore:\n  maxBytes: 150MB\n',
    })
  })

  after(async () => {
    await agent?.stop()
    await registry?.stop()
  })

  test('three 60 MB blobs under a 150MB budget: the store ends within it, the first is evicted, a slow reader of it still gets every byte', async () => {
    const [first, second, third] = blobs as [typeof blobs[0], typeof blobs[0], typeof blobs[0]]
    assert.deepEqual(await pull(agent, REPO, first.digest), { digest: first.digest, size: first.bytes.byteLength })
    await waitFor(async () => await isHeld(agent, first.digest), { timeoutMs: 30_000, what: 'the first blob to be committed' })
    // Served from the store, read slowly: the first chunk, then nothing until the blob has been evicted.
    const slow = await openSlowly(`${agent.url}/v2/${REPO}/blobs/${first.digest}`)

    for (const b of [second, third]) assert.deepEqual(await pull(agent, REPO, b.digest), { digest: b.digest, size: b.bytes.byteLength })
    await waitFor(async () => !await isHeld(agent, first.digest), { timeoutMs: 30_000, what: 'the first blob to be evicted' })
    await waitFor(async () => await agent.metric('flotilla_store_evictions_total') >= 1, { timeoutMs: 10_000, what: 'the eviction to be counted' })

    const disk = await onDisk(agent)
    assert.ok(disk.blobBytes <= 150 * MB, `the store holds ${disk.blobBytes} bytes, within 150MB`)
    assert.equal(await agent.metric('flotilla_store_budget_bytes'), 150 * MB)
    assert.ok(await agent.metric('flotilla_store_evicted_bytes_total') >= first.bytes.byteLength)
    assert.ok(await agent.metric('flotilla_store_bytes') <= 150 * MB)
    assert.equal(sha256(await readFile(blobPath(agent, third.digest))), third.digest, 'the last blob is intact in the store')
    assert.deepEqual(await pull(agent, REPO, third.digest), { digest: third.digest, size: third.bytes.byteLength })

    // The paused reader goes on: every byte of the evicted blob, verified.
    const rest: Buffer[] = [...slow.head]
    slow.res.on('data', (chunk: Buffer) => rest.push(chunk))
    const ended = new Promise<void>((resolve, reject) => { slow.res.once('end', resolve).once('error', reject) })
    slow.res.resume()
    await ended
    const body = Buffer.concat(rest)
    assert.equal(body.byteLength, first.bytes.byteLength)
    assert.equal(sha256(body), first.digest)
  })
})

void describe('disk full makes room (issue 10)', () => {
  const REPO = 'e2e/store-disk-full'
  let disk: TmpfsMount
  let registry: Distribution
  let agent: FlotillaAgent
  const digests: Record<'old1' | 'old2' | 'huge' | 'next', { digest: string, size: number }> = {} as never

  before(async () => {
    disk = await mountTmpfs('store-disk-full', '64m')
    registry = await startDistribution()
    const sizes = { old1: 20 * MB, old2: 20 * MB, huge: 100 * MB, next: 30 * MB }
    for (const [name, size] of Object.entries(sizes)) {
      digests[name as keyof typeof sizes] = { digest: await pushBlob(registry.url, REPO, randomBytes(size)), size }
    }
    // The default store.maxDiskPercent (75): a budget of 48 MB on this disk.
    agent = await startFlotilla({
      dataDir: join(disk.path, 'data'),
      configYaml: `registries:\n  "${registry.host}": { endpoint: "${registry.url}" }\ndefaultRegistry: "${registry.host}"\n`,
    })
  })

  after(async () => {
    await agent?.stop()
    await registry?.stop()
    await disk?.cleanup()
  })

  test('a 100 MB blob on a 64 MB disk is served whole and not kept; the store evicts to make room and the next pull is kept', async () => {
    const { old1, old2, huge, next } = digests
    for (const b of [old1, old2]) {
      assert.deepEqual(await pull(agent, REPO, b.digest), b)
      await waitFor(async () => await isHeld(agent, b.digest), { timeoutMs: 30_000, what: 'a 20 MB blob to be kept' })
    }
    assert.deepEqual(await pull(agent, REPO, huge.digest), huge, 'whole and verified, though the disk is full')
    await waitFor(async () => await agent.metric('flotilla_store_evictions_total', { reason: 'disk full' }) >= 1, { timeoutMs: 10_000, what: 'an eviction for the full disk' })
    assert.equal(await isHeld(agent, old1.digest), false, 'the least recently served blob made room')
    const left = await onDisk(agent)
    assert.deepEqual(left.tmp, [], 'nothing partial in tmp/')
    assert.ok(!left.blobs.includes(huge.digest.slice('sha256:'.length)), 'the 100 MB blob is not kept')
    for (const name of left.blobs) assert.equal(sha256(await readFile(join(agent.dataDir, 'blobs', 'sha256', name))), `sha256:${name}`, 'every kept blob is whole')

    // 30 MB did not fit in what the two 20 MB blobs left free; now it does, and it is kept.
    assert.deepEqual(await pull(agent, REPO, next.digest), next)
    await waitFor(async () => await isHeld(agent, next.digest), { timeoutMs: 30_000, what: 'the next blob to be kept' })
    assert.equal(sha256(await readFile(blobPath(agent, next.digest))), next.digest)
    assert.deepEqual((await onDisk(agent)).tmp, [])
  })
})
