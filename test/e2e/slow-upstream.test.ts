// Defect 6 end to end: a slow upstream (headers delayed 40 s, or a body that stalls after 5 MB) behind the
// counting proxy; curl through flotilla must have its answer, or an error it can fall back on, within a few
// seconds, never after the upstream client's 15 s / 30 s timeouts.
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { readFile, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { startCountingProxy, type CountingProxy } from '../helpers/counting-proxy.js'
import { startDistribution, type Distribution } from '../helpers/distribution.js'
import { startFlotilla, type FlotillaAgent } from '../helpers/flotilla-agent.js'
import { runCommand } from '../helpers/run-command.js'
import { makeTempDir, type TempDir } from '../helpers/temp-dir.js'
import { pushBlob } from '../helpers/push-blob.js'

const REPO = 'e2e/slow-upstream'
const STALL_TIMEOUT_S = 2
const FIRST_BYTE_TIMEOUT_S = 3
/** Process start-up, scheduling and a loaded machine: a few seconds, far below the 15 s / 30 s being fixed. */
const SLACK_MS = 4000

function sha256 (b: Buffer): string {
  return `sha256:${createHash('sha256').update(b).digest('hex')}`
}

void describe('slow upstream (defect 6)', () => {
  let work: TempDir
  let registry: Distribution
  let proxy: CountingProxy
  let agent: FlotillaAgent

  before(async () => {
    work = await makeTempDir('slow-upstream')
    registry = await startDistribution()
    proxy = await startCountingProxy({ upstreamUrl: registry.url })
    agent = await startFlotilla({
      configYaml: `registries:\n  "${registry.host}": { endpoint: "${proxy.url}" }\ndefaultRegistry: "${registry.host}"\n`,
      args: ['--stall-timeout', `${STALL_TIMEOUT_S}s`, '--first-byte-timeout', `${FIRST_BYTE_TIMEOUT_S}s`],
    })
  })

  after(async () => {
    await agent?.stop()
    await proxy?.close()
    await registry?.stop()
    await work?.cleanup()
  })

  /** curl with a generous timeout of its own: the status, the body's digest and size, and how long it took. */
  async function curl (digest: string, name: string): Promise<{ exitCode: number | null, status: string, digest: string, size: number, ms: number }> {
    const out = join(work.path, name)
    const r = await runCommand('curl', ['-sS', '--max-time', '90', '-o', out, '-w', '%{http_code}', `${agent.url}/v2/${REPO}/blobs/${digest}`], { timeoutMs: 100_000 })
    const body = await readFile(out).catch(() => Buffer.alloc(0))
    await rm(out, { force: true })
    return { exitCode: r.code, status: r.stdout, digest: sha256(body), size: body.byteLength, ms: r.durationMs }
  }

  test('defect 6: upstream headers delayed 40 s: the client has its answer or a 5xx within the first-byte bound', async (t) => {
    const digest = await pushBlob(registry.url, REPO, randomBytes(4 * 1024 * 1024))
    proxy.setBlobFault({ headersDelayMs: 40_000, times: 'all' })
    try {
      const r = await curl(digest, 'headers-delayed')
      t.diagnostic(`status ${r.status}, ${r.size} bytes, ${r.ms} ms`)
      assert.ok(r.ms < FIRST_BYTE_TIMEOUT_S * 1000 + SLACK_MS, `answered after ${r.ms} ms`)
      if (r.status === '200') assert.equal(r.digest, digest)
      else assert.match(r.status, /^5\d\d$/)
    } finally {
      proxy.setBlobFault(undefined)
    }
  })

  test('defect 6: a body that stalls after 5 MB: the client gets the whole blob (resumed with Range) or is cut within twice the stall bound', async (t) => {
    const size = 24 * 1024 * 1024
    const digest = await pushBlob(registry.url, REPO, randomBytes(size))
    const path = `/v2/${REPO}/blobs/${digest}`
    proxy.reset()
    proxy.setBlobFault({ stallAfterBytes: 5 * 1024 * 1024, times: 'first' })
    const r = await curl(digest, 'body-stalled')
    t.diagnostic(`curl exit ${r.exitCode}, status ${r.status}, ${r.size} bytes, ${r.ms} ms`)
    assert.ok(r.ms < 2 * STALL_TIMEOUT_S * 1000 + SLACK_MS, `done or cut after ${r.ms} ms`)
    if (r.exitCode === 0) {
      assert.equal(r.status, '200')
      assert.equal(r.digest, digest, 'a complete response has the right bytes')
      const gets = proxy.requests.filter((q) => q.path === path && q.method === 'GET')
      assert.ok(gets.length >= 2, 'the stalled request was given up on')
      assert.match(String(gets[1]?.headers.range), /^bytes=[1-9]\d*-/, 'resumed from the byte reached')
    } else {
      assert.ok(r.size < size, 'a cut client never holds the complete blob')
    }
  })
})
