// Issue 2 end to end: Distribution (behind a counting proxy) as the upstream, flotilla in front of it,
// skopeo and real containerd pulling through flotilla.
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { readdir, readFile, stat } from 'node:fs/promises'
import { request } from 'node:http'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { startContainerd, writeHostsToml } from '../helpers/containerd.js'
import { startCountingProxy, type CountingProxy } from '../helpers/counting-proxy.js'
import { startDistribution, type Distribution } from '../helpers/distribution.js'
import { startFlotilla, type FlotillaAgent } from '../helpers/flotilla-agent.js'
import { freePort } from '../helpers/free-port.js'
import { skopeoCopy, skopeoInspect } from '../helpers/skopeo.js'
import { makeTempDir, type TempDir } from '../helpers/temp-dir.js'
import { waitFor } from '../helpers/wait-for.js'
import { buildTestImage, hostManifest, pushTestImage, type TestImage } from '../helpers/test-image.js'
import { pushBlob } from '../helpers/push-blob.js'

const REPO = 'e2e/busybox'
const TAG = 'multi'

function sha256 (b: Buffer): string {
  return `sha256:${createHash('sha256').update(b).digest('hex')}`
}

/** GET with node:http so a connection aborted mid-body surfaces as an error. */
async function get (url: string, headers: Record<string, string> = {}, method = 'GET'): Promise<{ status: number, headers: Record<string, string | string[] | undefined>, body: Buffer }> {
  return await new Promise((resolve, reject) => {
    // Options, not a URL string: a URL would resolve `..` segments before they reach the server.
    const u = new URL(url)
    const rawPath = url.slice(url.indexOf('/', url.indexOf('//') + 2))
    const req = request({ hostname: u.hostname, port: u.port, path: rawPath, method, headers, timeout: 60_000 }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }) })
      res.on('aborted', () => reject(new Error('response aborted')))
      res.on('error', reject)
    })
    req.on('timeout', () => req.destroy(new Error('timeout')))
    req.on('error', reject)
    req.end()
  })
}

/** What a client saw: a complete response (all Content-Length bytes, then a clean end) or a failure (cut, error). */
type ClientOutcome = { isComplete: true, status: number, body: Buffer } | { isComplete: false, error: unknown }

async function getOutcome (url: string): Promise<ClientOutcome> {
  try {
    const r = await get(url)
    const length = r.headers['content-length']
    if (typeof length === 'string' && Number(length) !== r.body.length) return { isComplete: false, error: new Error(`${r.body.length} of ${length} bytes`) }
    return { isComplete: true, status: r.status, body: r.body }
  } catch (error) {
    return { isComplete: false, error }
  }
}

/** Pushes one random blob straight to Distribution's upload API; returns its digest. */
async function pushRandomBlob (registryUrl: string, repo: string, size: number): Promise<{ digest: string, bytes: Buffer }> {
  const bytes = Buffer.alloc(size)
  for (let i = 0; i < size; i += 4) bytes.writeUInt32LE((Math.random() * 0xffffffff) >>> 0, Math.min(i, size - 4))
  return { digest: await pushBlob(registryUrl, repo, bytes), bytes }
}

void describe('pull-through mirror (issue 2)', () => {
  let work: TempDir
  let registry: Distribution
  let proxy: CountingProxy
  let agent: FlotillaAgent
  let image: TestImage
  let regHost: string

  before(async () => {
    work = await makeTempDir('pull-through')
    const [r, img] = await Promise.all([startDistribution(), buildTestImage({ largeLayerMiB: 24 })])
    registry = r
    image = img
    await pushTestImage(image.layoutDir, registry.host, REPO, TAG)
    proxy = await startCountingProxy({ upstreamUrl: registry.url })
    // The image keeps its registry name (Distribution's host) while flotilla fetches through the counting proxy.
    regHost = registry.host
    agent = await startFlotilla({
      configYaml: `registries:\n  "${regHost}": { endpoint: "${proxy.url}", tagTTL: 0s }\ndefaultRegistry: "${regHost}"\n`,
    })
  })

  after(async () => {
    await agent?.stop()
    await proxy?.close()
    await registry?.stop()
    await work?.cleanup()
  })

  test('skopeo copies the multi-arch image through flotilla with the upstream digests', async () => {
    const out = join(work.path, 'skopeo-out')
    await skopeoCopy(`docker://${agent.host}/${REPO}:${TAG}`, `dir:${out}`, { all: true, preserveDigests: true })
    const raw = await skopeoInspect(`docker://${agent.host}/${REPO}:${TAG}`, { raw: true })
    assert.equal(sha256(raw), image.indexDigest)
    const files = new Set(await readdir(out))
    // dir: keeps blobs under their hex digest, the index as manifest.json, each platform's as <hex>.manifest.json.
    assert.equal(sha256(await readFile(join(out, 'manifest.json'))), image.indexDigest)
    for (const m of image.manifests) assert.equal(sha256(await readFile(join(out, `${m.digest.slice(7)}.manifest.json`))), m.digest)
    for (const d of image.allBlobDigests) {
      const hex = d.slice('sha256:'.length)
      assert.ok(files.has(hex), `skopeo output lacks ${d}`)
      assert.equal(sha256(await readFile(join(out, hex))), d)
    }
  })

  test('containerd pulls through flotilla via hosts.toml, every request through the mirror', async () => {
    const before = await agent.metric('flotilla_requests_total')
    const deadPort = await freePort()
    const ctrd = await startContainerd()
    try {
      // server points at a closed port: the pull can only succeed through flotilla.
      await writeHostsToml(ctrd.certsDir, regHost, { server: `http://127.0.0.1:${deadPort}`, mirrors: [{ url: agent.url, dialTimeout: '200ms' }] })
      await ctrd.pull(`${regHost}/${REPO}:${TAG}`, { hostsDir: ctrd.certsDir, timeoutMs: 120_000 })
      const m = hostManifest(image)
      for (const d of [m.digest, m.configDigest, ...m.layers.map((l) => l.digest)]) {
        const s = await stat(ctrd.blobPath(d))
        assert.ok(s.size > 0, `containerd lacks ${d}`)
        assert.equal(sha256(await readFile(ctrd.blobPath(d))), d)
      }
      const manifestReqs = await agent.metric('flotilla_requests_total', { registry: regHost, kind: 'manifest' })
      const blobReqs = await agent.metric('flotilla_requests_total', { registry: regHost, kind: 'blob' })
      assert.ok(manifestReqs >= 2, `expected manifest requests through flotilla, saw ${manifestReqs}`)
      assert.ok(blobReqs >= 1 + m.layers.length, `expected blob requests through flotilla, saw ${blobReqs}`)
      assert.ok(await agent.metric('flotilla_requests_total') > before)
    } finally {
      await ctrd.stop()
    }
  })

  test('50 concurrent GETs of one uncached blob: the upstream serves it once, all get the right bytes', async () => {
    const blob = await pushRandomBlob(registry.url, REPO, 8 * 1024 * 1024 + 123)
    const path = `/v2/${REPO}/blobs/${blob.digest}`
    proxy.reset()
    const results = await Promise.all(Array.from({ length: 50 }, async () => await get(`${agent.url}${path}?ns=${regHost}`)))
    for (const r of results) {
      assert.equal(r.status, 200)
      assert.equal(r.body.byteLength, blob.bytes.byteLength)
      assert.equal(sha256(r.body), blob.digest)
    }
    assert.equal(proxy.count(path, 'GET'), 1, 'upstream must serve the blob exactly once')
    assert.equal(proxy.bytes(path), blob.bytes.byteLength)
  })

  test('Range requests are answered with 206 and Content-Range; a bad range with 416', async () => {
    const m = hostManifest(image)
    const layer = m.layers[1]
    assert.ok(layer !== undefined)
    const url = `${agent.url}/v2/${REPO}/blobs/${layer.digest}`
    const full = await get(url)
    const part = await get(url, { range: 'bytes=100-199' })
    assert.equal(part.status, 206)
    assert.equal(part.headers['content-range'], `bytes 100-199/${layer.size}`)
    assert.deepEqual(part.body, full.body.subarray(100, 200))
    const bad = await get(url, { range: `bytes=${layer.size + 10}-` })
    assert.equal(bad.status, 416)
    assert.equal(bad.headers['content-range'], `bytes */${layer.size}`)
    const head = await get(url, {}, 'HEAD')
    assert.equal(head.status, 200)
    assert.equal(head.body.byteLength, 0)
    assert.equal(head.headers['content-length'], String(layer.size))
    assert.equal(head.headers['docker-content-digest'], layer.digest)
  })

  test('defect 13: an upstream that serves wrong bytes: no client gets a complete response with them, nothing is kept, the next request succeeds', async () => {
    const blob = await pushRandomBlob(registry.url, REPO, 3 * 1024 * 1024)
    const url = `${agent.url}/v2/${REPO}/blobs/${blob.digest}`
    await proxy.setMode('corrupt-blobs')
    let outcomes: ClientOutcome[]
    try {
      // Several clients at once: the first starts the download, the others join it.
      outcomes = await Promise.all(Array.from({ length: 3 }, async () => await getOutcome(url)))
    } finally {
      await proxy.setMode('pass')
    }
    for (const [i, o] of outcomes.entries()) {
      // Only a cut (or an error status) is right: the upstream never sent the blob's bytes.
      if (!o.isComplete) continue
      assert.notEqual(o.status, 200, `client ${i} received a complete 200 whose bytes hash to ${sha256(o.body)}, not ${blob.digest}`)
      assert.ok(o.status >= 500, `client ${i}: status ${o.status}`)
    }
    await waitFor(async () => (await readdir(join(agent.dataDir, 'tmp'))).length === 0, { timeoutMs: 10_000, what: 'tmp/ to be emptied' })
    await assert.rejects(stat(join(agent.dataDir, 'blobs', 'sha256', blob.digest.slice(7))), { code: 'ENOENT' })
    const ok = await get(url)
    assert.equal(ok.status, 200)
    assert.equal(sha256(ok.body), blob.digest)
  })


  test('malformed requests get the right 4xx with an OCI error body; the server stays up', async () => {
    const cases: Array<[string, string, number, string]> = [
      ['GET', '/v2/UPPER/manifests/latest', 400, 'NAME_INVALID'],
      ['GET', '/v2/a/../b/manifests/latest', 400, 'NAME_INVALID'],
      ['GET', '/v2/a/%2e%2e/b/manifests/latest', 400, 'NAME_INVALID'],
      ['GET', `/v2/${REPO}/manifests/bad$tag`, 400, 'TAG_INVALID'],
      ['GET', `/v2/${REPO}/blobs/md5:abcd`, 400, 'DIGEST_INVALID'],
      ['GET', `/v2/${REPO}/blobs/sha256:abc`, 400, 'DIGEST_INVALID'],
      ['GET', `/v2/${REPO}/blobs/sha256:${'A'.repeat(64)}`, 400, 'DIGEST_INVALID'],
      ['GET', `/v2/${REPO}/blobs/sha256:${'0'.repeat(64)}`, 404, 'BLOB_UNKNOWN'],
      ['GET', `/v2/${REPO}/manifests/no-such-tag`, 404, 'MANIFEST_UNKNOWN'],
      ['GET', `/v2/${REPO}/manifests/x?ns=not-configured.example`, 404, 'NAME_UNKNOWN'],
      ['GET', `/v2/${REPO}/manifests/x?ns=bad%20host!`, 400, 'NAME_INVALID'],
      ['GET', '/v2/nothing-here', 404, 'NAME_UNKNOWN'],
      ['GET', '/elsewhere', 404, 'NAME_UNKNOWN'],
      // This host may push (flotilla load): whole blobs and manifests only, and valid ones.
      ['PATCH', `/v2/${REPO}/blobs/uploads/some-upload`, 405, 'UNSUPPORTED'],
      ['PUT', `/v2/${REPO}/blobs/uploads/no-such-upload?digest=${image.largeLayerDigest}`, 404, 'BLOB_UPLOAD_UNKNOWN'],
      ['PUT', `/v2/${REPO}/manifests/${TAG}`, 400, 'MANIFEST_INVALID'],
      ['DELETE', `/v2/${REPO}/blobs/${image.largeLayerDigest}`, 405, 'UNSUPPORTED'],
    ]
    for (const [method, path, status, code] of cases) {
      const r = await get(`${agent.url}${path}`, {}, method)
      assert.equal(r.status, status, `${method} ${path}: ${r.body.toString()}`)
      const doc = JSON.parse(r.body.toString()) as { errors: Array<{ code: string, message: string }> }
      assert.equal(doc.errors[0]?.code, code, `${method} ${path}`)
      assert.ok((doc.errors[0]?.message ?? '').length > 0)
    }
    const head = await get(`${agent.url}/v2/${REPO}/blobs/sha256:${'0'.repeat(64)}`, {}, 'HEAD')
    assert.equal(head.status, 404)
    assert.equal(head.body.byteLength, 0)
    assert.equal((await get(`${agent.url}/v2/`)).status, 200)
  })

  test('tags list comes from upstream, and from the local index when the upstream is down', async () => {
    const up = await get(`${agent.url}/v2/${REPO}/tags/list`)
    assert.equal(up.status, 200)
    assert.ok((JSON.parse(up.body.toString()) as { tags: string[] }).tags.includes(TAG))
    await proxy.setMode('refuse')
    try {
      const local = await get(`${agent.url}/v2/${REPO}/tags/list`)
      assert.equal(local.status, 200)
      assert.deepEqual((JSON.parse(local.body.toString()) as { tags: string[] }).tags, [TAG])
    } finally {
      await proxy.setMode('pass')
    }
  })

  test('upstream gone: the pulled tag is served stale (marked) and still pulls into a fresh containerd', async () => {
    await proxy.setMode('refuse')
    const ctrd = await startContainerd()
    try {
      const head = await get(`${agent.url}/v2/${REPO}/manifests/${TAG}`, { accept: 'application/vnd.oci.image.index.v1+json' }, 'HEAD')
      assert.equal(head.status, 200)
      assert.equal(head.headers['docker-content-digest'], image.indexDigest)
      assert.ok(head.headers['x-flotilla-stale-seconds'] !== undefined, 'a stale answer says so')
      await writeHostsToml(ctrd.certsDir, regHost, { server: `http://127.0.0.1:${await freePort()}`, mirrors: [{ url: agent.url, dialTimeout: '200ms' }] })
      await ctrd.pull(`${regHost}/${REPO}:${TAG}`, { hostsDir: ctrd.certsDir, timeoutMs: 120_000 })
      const m = hostManifest(image)
      for (const l of m.layers) assert.equal(sha256(await readFile(ctrd.blobPath(l.digest))), l.digest)
      assert.ok(await agent.metric('flotilla_stale_tags_served_total') >= 1)
    } finally {
      await ctrd.stop()
      await proxy.setMode('pass')
    }
  })
})
