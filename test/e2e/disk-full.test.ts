// Defect 10 end to end: the agent's data dir on a tmpfs smaller than the blob. The blob is streamed to the
// client verified without being kept, from one upstream GET (no Range retries), and nothing of it is left.
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { readdir, readFile, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { startCountingProxy, type CountingProxy } from '../helpers/counting-proxy.js'
import { startDistribution, type Distribution } from '../helpers/distribution.js'
import { startFlotilla, type FlotillaAgent } from '../helpers/flotilla-agent.js'
import { runCommandChecked } from '../helpers/run-command.js'
import { makeTempDir, type TempDir } from '../helpers/temp-dir.js'
import { mountTmpfs, type TmpfsMount } from '../helpers/tmpfs-mount.js'
import { pushBlob } from '../helpers/push-blob.js'

const REPO = 'e2e/disk-full'
const BLOB_SIZE = 24 * 1024 * 1024 + 321

function sha256 (b: Buffer): string {
  return `sha256:${createHash('sha256').update(b).digest('hex')}`
}

/** Every file under `dir` (relative paths). */
async function filesUnder (dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true })
  return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath ?? e.path, e.name).slice(dir.length + 1)).sort()
}

void describe('disk full (defect 10)', () => {
  let work: TempDir
  let disk: TmpfsMount
  let registry: Distribution
  let proxy: CountingProxy
  let agent: FlotillaAgent
  let digest: string

  before(async () => {
    work = await makeTempDir('disk-full')
    disk = await mountTmpfs('disk-full-data', '8m')
    registry = await startDistribution()
    digest = await pushBlob(registry.url, REPO, randomBytes(BLOB_SIZE))
    proxy = await startCountingProxy({ upstreamUrl: registry.url })
    agent = await startFlotilla({
      dataDir: join(disk.path, 'data'),
      configYaml: `registries:\n  "${registry.host}": { endpoint: "${proxy.url}" }\ndefaultRegistry: "${registry.host}"\n`,
    })
  })

  after(async () => {
    await agent?.stop()
    await proxy?.close()
    await registry?.stop()
    await disk?.cleanup()
    await work?.cleanup()
  })

  /** curl through the agent into a file; its digest, and the upstream GETs it caused. */
  async function pullWithCurl (name: string): Promise<{ digest: string, size: number }> {
    const out = join(work.path, name)
    const r = await runCommandChecked('curl', ['-sS', '--fail', '--max-time', '120', '-o', out, '-w', '%{http_code}', `${agent.url}/v2/${REPO}/blobs/${digest}`], { timeoutMs: 130_000 })
    assert.equal(r.stdout, '200')
    const body = await readFile(out)
    await rm(out)
    return { digest: sha256(body), size: body.byteLength }
  }

  test('defect 10: a blob bigger than the free space is pulled whole, verified, from one upstream GET, and nothing of it is kept', async () => {
    const path = `/v2/${REPO}/blobs/${digest}`
    proxy.reset()
    assert.deepEqual(await pullWithCurl('first'), { digest, size: BLOB_SIZE })
    const gets = proxy.requests.filter((r) => r.path === path && r.method === 'GET')
    assert.equal(gets.length, 1, 'one upstream GET for the blob')
    assert.equal(gets[0]?.headers.range, undefined, 'no Range retry for bytes already received')
    assert.equal(proxy.bytes(path), BLOB_SIZE, 'the upstream sent the blob once')
    const left = await filesUnder(agent.dataDir)
    assert.ok(!left.some((f) => f.startsWith('tmp/') || f.includes(digest.slice('sha256:'.length))), `nothing of the blob is left: ${left.join(', ')}`)

    proxy.reset()
    assert.deepEqual(await pullWithCurl('second'), { digest, size: BLOB_SIZE }, 'a second pull works too')
    assert.equal(proxy.count(path, 'GET'), 1)
    assert.ok(!(await filesUnder(agent.dataDir)).some((f) => f.startsWith('tmp/')))
  })
})
