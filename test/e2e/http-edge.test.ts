// Issue 8, defects 3, 4, 8 and 12 through a real client (curl, which sends a target as written with
// --path-as-is), against flotilla in front of Distribution.
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { networkInterfaces } from 'node:os'
import { after, before, describe, test } from 'node:test'
import { startDistribution, type Distribution } from '../helpers/distribution.js'
import { startFlotilla, type FlotillaAgent } from '../helpers/flotilla-agent.js'
import { freePort } from '../helpers/free-port.js'
import { runCommand } from '../helpers/run-command.js'
import { pushBlob } from '../helpers/push-blob.js'

const REPO = 'e2e/edge'
const TAG = 'v1'

function sha256 (b: Buffer): string {
  return `sha256:${createHash('sha256').update(b).digest('hex')}`
}

interface CurlResponse { status: number, headers: Record<string, string>, body: Buffer }

/** One request with curl, the target sent exactly as given (no `..` or `//` folding). */
async function curl (url: string, headers: Record<string, string> = {}): Promise<CurlResponse> {
  const args = ['-s', '--path-as-is', '--max-time', '20', '-i', ...Object.entries(headers).flatMap(([k, v]) => ['-H', `${k}: ${v}`]), url]
  const r = await runCommand('curl', args, { timeoutMs: 25_000 })
  assert.equal(r.code, 0, `curl ${url}: exit ${String(r.code)} ${r.stderr}`)
  const out = r.stdoutBytes
  const split = out.indexOf('\r\n\r\n')
  const head = out.subarray(0, split).toString('latin1').split('\r\n')
  const fields: Record<string, string> = {}
  for (const line of head.slice(1)) {
    const colon = line.indexOf(':')
    fields[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim()
  }
  return { status: Number(/^HTTP\/1\.1 (\d{3})/.exec(head[0] ?? '')?.[1] ?? 0), headers: fields, body: out.subarray(split + 4) }
}

function ociCode (r: CurlResponse): string | undefined {
  return (JSON.parse(r.body.toString()) as { errors?: Array<{ code?: string }> }).errors?.[0]?.code
}

/** An address of this machine that is not loopback: a request to it comes from it, as from another host. */
const outside = Object.values(networkInterfaces()).flat().find((a) => a !== undefined && !a.internal && a.family === 'IPv4')?.address

void describe('HTTP edge (issue 8)', () => {
  let registry: Distribution
  let agent: FlotillaAgent
  let metricsPort: number
  const layer = Buffer.alloc(256 * 1024)
  for (let i = 0; i < layer.byteLength; i++) layer[i] = (i * 31) % 253
  let layerDigest: string

  before(async () => {
    registry = await startDistribution()
    layerDigest = await pushBlob(registry.url, REPO, layer)
    const config = Buffer.from('{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}')
    const configDigest = await pushBlob(registry.url, REPO, config)
    const manifest = JSON.stringify({
      schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.byteLength },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: layerDigest, size: layer.byteLength }],
    })
    const put = await fetch(`${registry.url}/v2/${REPO}/manifests/${TAG}`, { method: 'PUT', body: manifest, headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' }, signal: AbortSignal.timeout(10_000) })
    assert.equal(put.status, 201, await put.text())
    metricsPort = await freePort()
    // On every address, so that a client can come from a non-loopback one; metrics also on their own port.
    agent = await startFlotilla({
      host: '0.0.0.0',
      configYaml: `registries:\n  "${registry.host}": { endpoint: "${registry.url}" }\ndefaultRegistry: "${registry.host}"\n`,
      args: ['--metrics-listen', `0.0.0.0:${metricsPort}`],
    })
  })

  after(async () => {
    await agent?.stop()
    await registry?.stop()
  })

  const api = (path: string): string => `http://127.0.0.1:${agent.port}${path}`

  test('defect 3: a Range in an unknown unit is ignored: 200 with the whole blob', async () => {
    const r = await curl(api(`/v2/${REPO}/blobs/${layerDigest}`), { range: 'items=0-10' })
    assert.equal(r.status, 200)
    assert.equal(r.headers['content-range'], undefined)
    assert.equal(sha256(r.body), layerDigest)
    const ranged = await curl(api(`/v2/${REPO}/blobs/${layerDigest}`), { range: 'bytes=10-19' })
    assert.equal(ranged.status, 206)
    assert.ok(ranged.body.equals(layer.subarray(10, 20)))
    const garbage = await curl(api(`/v2/${REPO}/blobs/${layerDigest}`), { range: 'bytes=ten-twenty' })
    assert.equal(garbage.status, 416, 'bytes= with garbage is still refused')
    assert.equal(garbage.headers['content-range'], `bytes */${layer.byteLength}`)
  })

  test('defect 4: tags/list names the repository the client asked for', async () => {
    const viaHost = await curl(api(`/v2/${registry.host}/${REPO}/tags/list`))
    assert.equal(viaHost.status, 200, viaHost.body.toString())
    assert.deepEqual(JSON.parse(viaHost.body.toString()), { name: `${registry.host}/${REPO}`, tags: [TAG] })
    assert.equal(viaHost.headers['content-length'], String(viaHost.body.byteLength))
    const viaNs = await curl(api(`/v2/${REPO}/tags/list?ns=${registry.host}`))
    assert.deepEqual(JSON.parse(viaNs.body.toString()), { name: REPO, tags: [TAG] })
  })

  test('defect 4: unknown endpoints answer NAME_UNKNOWN (404), a code from the spec', async () => {
    for (const path of ['/v2/nothing-here', '/elsewhere', '/v2/_catalog', `/v2/${REPO}/tags`]) {
      const r = await curl(api(path))
      assert.equal(r.status, 404, path)
      assert.equal(ociCode(r), 'NAME_UNKNOWN', path)
    }
  })

  test('defect 8: raw targets with //, \\ and dot segments get 400/404 with an OCI body, never 500', async () => {
    const targets: Array<[string, number, string]> = [
      ['//%', 400, 'NAME_INVALID'],
      ['/\\x', 400, 'NAME_INVALID'],
      ['//anyhost/v2/', 400, 'NAME_INVALID'],
      [`//anyhost/v2/${REPO}/blobs/${layerDigest}`, 400, 'NAME_INVALID'],
      [`/v2/zzz/..\\..\\v2/${REPO}/blobs/${layerDigest}`, 400, 'NAME_INVALID'],
      [`/v2/zzz/%2e%2e/%2E%2E/v2/${REPO}/blobs/${layerDigest}`, 400, 'NAME_INVALID'],
      [`/v2/zzz/..%5C..%5Cv2/${REPO}/blobs/${layerDigest}`, 400, 'NAME_INVALID'],
      [`/v2/zzz/../../v2/${REPO}/tags/list`, 400, 'NAME_INVALID'],
      ['/v2/a/%E0%A4%A/tags/list', 400, 'NAME_INVALID'],
      ['/v2/zzz%2F..%2F..%2Fv2/x/tags/list', 400, 'NAME_INVALID'],
    ]
    for (const [target, status, code] of targets) {
      const r = await curl(api(target))
      assert.equal(r.status, status, `${target}: ${r.body.toString()}`)
      assert.equal(ociCode(r), code, target)
    }
    assert.doesNotMatch(agent.process.output(), /unexpected error|"stack"/, 'no 500 and no stack trace in the log')
    assert.equal((await curl(api(`/v2/${REPO}/blobs/${layerDigest}`))).status, 200, 'the agent still serves')
  })

  test('defect 12: /metrics answers loopback on the API listener, and anyone on metricsListen', async () => {
    const local = await curl(api('/metrics'))
    assert.equal(local.status, 200)
    assert.match(local.body.toString(), /flotilla_requests_total/)
    const scraped = await curl(`http://127.0.0.1:${metricsPort}/metrics`)
    assert.equal(scraped.status, 200)
    assert.match(scraped.body.toString(), /flotilla_store_bytes/)
    const notApi = await curl(`http://127.0.0.1:${metricsPort}/v2/`)
    assert.equal(notApi.status, 404, 'the metrics listener serves nothing of the API')
    assert.equal(ociCode(notApi), 'NAME_UNKNOWN')
  })

  test('defect 12: from a non-loopback address /metrics is 404 on the API listener; the probes and metricsListen answer', { skip: outside === undefined ? 'this machine has no non-loopback IPv4 address' : false }, async () => {
    const host = outside as string
    const m = await curl(`http://${host}:${agent.port}/metrics`)
    assert.equal(m.status, 404)
    assert.equal(ociCode(m), 'NAME_UNKNOWN')
    assert.doesNotMatch(m.body.toString(), /flotilla_/)
    assert.equal((await curl(`http://${host}:${agent.port}/healthz`)).status, 200)
    assert.equal((await curl(`http://${host}:${agent.port}/readyz`)).status, 200)
    const scraped = await curl(`http://${host}:${metricsPort}/metrics`)
    assert.equal(scraped.status, 200)
    assert.match(scraped.body.toString(), /flotilla_requests_total/)
  })
})
