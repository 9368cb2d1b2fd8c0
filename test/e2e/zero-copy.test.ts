// Issue 16: blobs served from the store with sendfile(2) (the native addon, `zeroCopy: auto`) and through
// JavaScript (`zeroCopy: off`), each checked with curl against Distribution's bytes: whole, in ranges, and
// with clients that hang up mid-blob (nothing left open, the next client served).
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { readdir, stat } from 'node:fs/promises'
import { connect } from 'node:net'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { startDistribution, type Distribution } from '../helpers/distribution.js'
import { startFlotilla, type FlotillaAgent } from '../helpers/flotilla-agent.js'
import { pushBlob } from '../helpers/push-blob.js'
import { runCommand } from '../helpers/run-command.js'
import { waitFor } from '../helpers/wait-for.js'

const REPO = 'e2e/zero-copy'
const SIZE = 24 * 1024 * 1024 + 4321

function sha256 (b: Buffer): string {
  return createHash('sha256').update(b).digest('hex')
}

/** The body of a GET with curl, or of a range of it. */
async function curlBody (url: string, range?: string): Promise<{ code: number, body: Buffer }> {
  const r = await runCommand('curl', ['-s', '-f', '--max-time', '30', '-w', '', ...(range === undefined ? [] : ['-H', `Range: bytes=${range}`]), url], { timeoutMs: 35_000 })
  return { code: r.code ?? -1, body: r.stdoutBytes }
}

/** Reads `bytes` of the response, then hangs up (a client that stops a pull half-way). */
async function hangUpAfter (host: string, port: number, path: string, bytes: number): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const socket = connect(port, host)
    let received = 0
    socket.setTimeout(20_000, () => { socket.destroy(); reject(new Error('no bytes within 20s')) })
    socket.on('data', (c: Buffer) => {
      received += c.byteLength
      if (received >= bytes) {
        socket.destroy()
        resolve()
      }
    })
    socket.on('error', reject)
    socket.write(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\n\r\n`)
  })
}

async function openFds (pid: number): Promise<number> {
  return (await readdir(`/proc/${pid}/fd`)).length
}

void describe('blobs from the store: sendfile and JavaScript (issue 16)', () => {
  let registry: Distribution
  const blob = randomBytes(SIZE)
  let digest: string
  const agents: Partial<Record<'auto' | 'off', FlotillaAgent>> = {}

  before(async () => {
    registry = await startDistribution()
    digest = await pushBlob(registry.url, REPO, blob)
    for (const mode of ['auto', 'off'] as const) {
      agents[mode] = await startFlotilla({
        configYaml: `registries:\n  "${registry.host}": { endpoint: "${registry.url}" }\ndefaultRegistry: "${registry.host}"\n`,
        env: { FLOTILLA_ZERO_COPY: mode },
      })
    }
  })

  after(async () => {
    await agents.auto?.stop()
    await agents.off?.stop()
    await registry?.stop()
  })

  for (const mode of ['auto', 'off'] as const) {
    test(`zeroCopy ${mode}: whole and ranged GETs are the upstream's bytes; hang-ups leave nothing open`, async () => {
      const agent = agents[mode]
      assert.ok(agent !== undefined)
      // The start log says which path serves files: the addon must be built here (npm ci builds it).
      assert.match(agent.process.output(), new RegExp(`"zeroCopy":${mode === 'auto' ? 'true' : 'false'}`))
      const url = `${agent.url}/v2/${REPO}/blobs/${digest}`
      const cold = await curlBody(url)
      assert.equal(cold.code, 0)
      assert.equal(sha256(cold.body), sha256(blob), 'cold GET')
      // The store commits after the client has its last byte: wait for the file, then every GET is from it.
      const file = join(agent.dataDir, 'blobs', 'sha256', digest.slice('sha256:'.length))
      await waitFor(async () => (await stat(file).catch(() => undefined))?.size === SIZE, { timeoutMs: 30_000, what: 'the blob committed to the store' })
      for (let i = 0; i < 3; i++) {
        const warm = await curlBody(url)
        assert.equal(warm.code, 0)
        assert.equal(sha256(warm.body), sha256(blob), `warm GET ${i}`)
      }
      for (const [start, end] of [[0, 0], [1000, 5_000_000], [SIZE - 300_000, SIZE - 1], [12_345, SIZE - 2]] as const) {
        const r = await curlBody(url, `${start}-${end}`)
        assert.equal(r.code, 0)
        assert.equal(sha256(r.body), sha256(blob.subarray(start, end + 1)), `range ${start}-${end}`)
      }

      const fdsBefore = await openFds(agent.process.pid)
      for (let i = 0; i < 5; i++) await hangUpAfter('127.0.0.1', agent.port, `/v2/${REPO}/blobs/${digest}`, 1024 * 1024)
      await waitFor(async () => await openFds(agent.process.pid) <= fdsBefore, { timeoutMs: 10_000, what: 'the hung-up responses to close their files and sockets' })
      const after = await curlBody(url)
      assert.equal(sha256(after.body), sha256(blob), 'a GET after the hang-ups')
      assert.ok(agent.process.isRunning)
    })
  }
})
