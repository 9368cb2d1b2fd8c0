// Issue 8, defects found by real clients: what a tag resolves to for containerd does not depend on an earlier
// narrow-Accept client (1); a layer is never served as a manifest (2); content fetched with credentials is
// served only under the repositories it is known in, across restarts and with the upstream gone (5).
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { startContainerd, writeHostsToml, type Containerd } from '../helpers/containerd.js'
import { startDistribution, type Distribution } from '../helpers/distribution.js'
import { startFlotilla, type FlotillaAgent } from '../helpers/flotilla-agent.js'
import { runCommand } from '../helpers/run-command.js'
import { skopeoCopy } from '../helpers/skopeo.js'
import { makeTempDir, type TempDir } from '../helpers/temp-dir.js'
import { buildTestImage, type TestImage } from '../helpers/test-image.js'

const REPO = 'e2e/multi'
const TAG = 'v1'
const DOCKER_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json'
const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json'
const EVERY_KIND = `${DOCKER_LIST}, ${DOCKER_MANIFEST}, application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json`

function sha256 (b: Buffer): string {
  return `sha256:${createHash('sha256').update(b).digest('hex')}`
}

interface Answer { status: number, contentType: string, body: Buffer }

let bodies = 0

/** curl, the client that found defect 1: status, content type and body (through a file: it may be binary) of one GET. */
async function curl (work: TempDir, url: string, accept?: string): Promise<Answer> {
  const out = join(work.path, `body-${++bodies}`)
  const args = ['-sS', '--max-time', '30', '-o', out, '-w', '%{http_code} %{content_type}', ...(accept === undefined ? [] : ['-H', `Accept: ${accept}`]), url]
  const r = await runCommand('curl', args, { timeoutMs: 40_000 })
  assert.equal(r.code, 0, r.stderr)
  const [status = '0', contentType = ''] = r.stdout.trim().split(' ')
  return { status: Number(status), contentType, body: await readFile(out).catch(() => Buffer.alloc(0)) }
}

function errorCode (a: Answer): string | undefined {
  return (JSON.parse(a.body.toString()) as { errors?: Array<{ code?: string }> }).errors?.[0]?.code
}

void describe('correct for every client (issue 8)', () => {
  let work: TempDir
  let registry: Distribution
  let image: TestImage
  let index: { digest: string, bytes: Buffer, manifests: Array<{ digest: string, platform: { architecture: string } }> }

  before(async () => {
    work = await makeTempDir('client-correctness')
    const [r, img] = await Promise.all([startDistribution(), buildTestImage({ largeLayerMiB: 2, tag: 'narrow' })])
    registry = r
    image = img
    // Docker media types: Distribution 2.8 answers a client that does not accept manifest lists with amd64's manifest.
    await skopeoCopy(`oci:${image.layoutDir}:narrow`, `docker://${registry.host}/${REPO}:${TAG}`, { all: true, format: 'v2s2' })
    const res = await fetch(`${registry.url}/v2/${REPO}/manifests/${TAG}`, { headers: { accept: EVERY_KIND }, signal: AbortSignal.timeout(10_000) })
    assert.equal(res.headers.get('content-type'), DOCKER_LIST)
    const bytes = Buffer.from(await res.arrayBuffer())
    index = { digest: sha256(bytes), bytes, ...(JSON.parse(bytes.toString()) as { manifests: Array<{ digest: string, platform: { architecture: string } }> }) }
  })

  after(async () => {
    await registry?.stop()
    await work?.cleanup()
  })

  void describe('defects 1 and 2: containerd after a narrow client', () => {
    let agent: FlotillaAgent
    let ctrd: Containerd

    before(async () => {
      agent = await startFlotilla({ configYaml: `registries:\n  "${registry.host}": { endpoint: "${registry.url}", tagTTL: 1h }\ndefaultRegistry: "${registry.host}"\n` })
      ctrd = await startContainerd()
      // No usable server: only flotilla can answer containerd.
      await writeHostsToml(ctrd.certsDir, registry.host, { server: 'http://127.0.0.1:9', mirrors: [{ url: agent.url }] })
    })

    after(async () => {
      await ctrd?.stop()
      await agent?.stop()
    })

    test('defect 1: a narrow Accept first (curl), then containerd pulls linux/arm64 of the tag and gets arm64 content under the upstream\'s index digest', async () => {
      const narrow = await curl(work, `${agent.url}/v2/${REPO}/manifests/${TAG}`, DOCKER_MANIFEST)
      assert.equal(narrow.status, 200)
      assert.equal(narrow.contentType, DOCKER_MANIFEST, 'the narrow client gets one platform\'s manifest, as from Distribution')
      const json = await curl(work, `${agent.url}/v2/${REPO}/manifests/${TAG}`, 'application/json')
      assert.ok(json.status === 200 || json.status === 404, `application/json answered ${json.status}`)

      await ctrd.pull(`${registry.host}/${REPO}:${TAG}`, { platform: 'linux/arm64', timeoutMs: 120_000 })
      const listed = await ctrd.ctr(['images', 'ls'])
      const line = listed.stdout.split('\n').find((l) => l.startsWith(`${registry.host}/${REPO}:${TAG}`)) ?? ''
      assert.ok(line.includes(index.digest), `containerd resolved the tag to the upstream's index ${index.digest}: ${line}`)
      const arm64 = index.manifests.find((m) => m.platform.architecture === 'arm64')
      assert.ok(arm64 !== undefined)
      const manifest = await readFile(ctrd.blobPath(arm64.digest))
      assert.equal(sha256(manifest), arm64.digest, 'containerd holds the arm64 manifest')
      const config = (JSON.parse(manifest.toString()) as { config: { digest: string } }).config.digest
      const configBytes = await readFile(ctrd.blobPath(config))
      assert.equal(sha256(configBytes), config)
      assert.equal((JSON.parse(configBytes.toString()) as { architecture: string }).architecture, 'arm64', 'and unpacked arm64 content')
    })

    test('defect 2: a layer held in the cache asked for as a manifest is MANIFEST_UNKNOWN, not served', async () => {
      const arm64 = index.manifests.find((m) => m.platform.architecture === 'arm64')?.digest ?? ''
      const manifest = JSON.parse((await readFile(ctrd.blobPath(arm64))).toString()) as { layers: Array<{ digest: string }> }
      const layer = manifest.layers.at(-1)?.digest ?? ''
      const blob = await curl(work, `${agent.url}/v2/${REPO}/blobs/${layer}`)
      assert.equal(blob.status, 200, 'the layer is in the cache')
      const asManifest = await curl(work, `${agent.url}/v2/${REPO}/manifests/${layer}`, EVERY_KIND)
      assert.equal(asManifest.status, 404)
      assert.equal(errorCode(asManifest), 'MANIFEST_UNKNOWN')
    })
  })

  test('defect 5: content fetched with credentials is served only under the repository it is known in, across a restart without the upstream', async () => {
    const credentials = join(work.path, 'config.json')
    await writeFile(credentials, JSON.stringify({ auths: { [registry.host]: { auth: Buffer.from('puller:secret').toString('base64') } } }))
    const dataDir = join(work.path, 'private-agent')
    const config = (endpoint: string): string => `registries:\n  "${registry.host}": { endpoint: "${endpoint}" }\ndefaultRegistry: "${registry.host}"\ncredentialsFile: "${credentials}"\n`
    const manifest = JSON.parse((await (await fetch(`${registry.url}/v2/${REPO}/manifests/${index.manifests[0]?.digest ?? ''}`, { headers: { accept: DOCKER_MANIFEST } })).arrayBuffer().then((b) => Buffer.from(b))).toString()) as { layers: Array<{ digest: string }> }
    const layer = manifest.layers.at(-1)?.digest ?? ''
    let agent = await startFlotilla({ dataDir, configYaml: config(registry.url) })
    try {
      assert.equal((await curl(work, `${agent.url}/v2/${REPO}/blobs/${layer}`)).status, 200)
      const elsewhere = await curl(work, `${agent.url}/v2/e2e/not-here/blobs/${layer}`)
      assert.equal(elsewhere.status, 404, 'Distribution answers 404 there, so must we')
      assert.equal(errorCode(elsewhere), 'BLOB_UNKNOWN')
      assert.equal((await curl(work, `${agent.url}/v2/e2e/not-here/manifests/${index.digest}`, EVERY_KIND)).status, 404)
      // A repository the upstream confirms (with our credentials) has it is served.
      await skopeoCopy(`docker://${registry.host}/${REPO}:${TAG}`, `docker://${registry.host}/e2e/copy:${TAG}`, { all: true, preserveDigests: true })
      const copy = await curl(work, `${agent.url}/v2/e2e/copy/blobs/${layer}`)
      assert.equal(copy.status, 200)
      assert.equal(sha256(copy.body), layer)
    } finally {
      await agent.stop()
    }
    // Restarted with the upstream out of reach: still served where known, still refused elsewhere.
    agent = await startFlotilla({ dataDir, configYaml: config('http://127.0.0.1:9') })
    try {
      const known = await curl(work, `${agent.url}/v2/${REPO}/blobs/${layer}`)
      assert.equal(known.status, 200)
      assert.equal(sha256(known.body), layer)
      assert.equal((await curl(work, `${agent.url}/v2/e2e/copy/blobs/${layer}`)).status, 200)
      const other = await curl(work, `${agent.url}/v2/e2e/other/blobs/${layer}`)
      assert.notEqual(other.status, 200, 'unconfirmed repositories get nothing')
    } finally {
      await agent.stop()
    }
  })
})
