// Issue 14, the central mirror role: `flotilla serve --role mirror` over HTTPS (a test certificate) with an
// htpasswd file written by Debian's `htpasswd -B`, in front of Debian's Distribution. Clients without or with
// wrong credentials get 401 with a Basic challenge and an OCI error body; skopeo with the right ones pulls
// through it; probes stay open; a mirror with no way to authenticate clients refuses to start.
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { mkdir, writeFile } from 'node:fs/promises'
import { request as httpsRequest } from 'node:https'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { startDistribution, type Distribution } from '../helpers/distribution.js'
import { flotillaCommand, startFlotilla, sumMetric, type FlotillaAgent } from '../helpers/flotilla-agent.js'
import { freePort } from '../helpers/free-port.js'
import { runCommand, runCommandChecked } from '../helpers/run-command.js'
import { makeTempDir, type TempDir } from '../helpers/temp-dir.js'
import { buildTestImage, hostArchitecture, pushTestImage, type TestImage } from '../helpers/test-image.js'

interface Answer { status: number, headers: Record<string, string | string[] | undefined>, text: string }

void describe('the central mirror role (issue 14)', () => {
  let work: TempDir
  let registry: Distribution
  let image: TestImage
  let mirror: FlotillaAgent
  let ca: Buffer
  let metricsUrl: string

  const get = async (path: string, auth?: string): Promise<Answer> => await new Promise((resolve, reject) => {
    const req = httpsRequest(`${mirror.url}${path}`, { ca, timeout: 10_000, headers: auth === undefined ? {} : { authorization: auth } }, (res) => {
      let text = ''
      res.on('data', (c: Buffer) => { text += c.toString() })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }))
    })
    req.on('timeout', () => req.destroy(new Error('timed out')))
    req.on('error', reject)
    req.end()
  })
  const basic = (user: string, password: string): string => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`

  before(async () => {
    work = await makeTempDir('mirror-role')
    ;[registry, image] = await Promise.all([startDistribution(), buildTestImage({ largeLayerMiB: 4 })])
    await pushTestImage(image.layoutDir, registry.host, 'central/app', image.tag)
    const cert = join(work.path, 'tls.crt')
    const key = join(work.path, 'tls.key')
    await runCommandChecked('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1',
      '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', key, '-out', cert], { timeoutMs: 30_000 })
    ca = readFileSync(cert)
    const htpasswd = join(work.path, 'htpasswd')
    await runCommandChecked('htpasswd', ['-cbB', htpasswd, 'alice', 's3cret'], { timeoutMs: 10_000 })
    const metricsPort = await freePort()
    metricsUrl = `http://127.0.0.1:${metricsPort}/metrics`
    mirror = await startFlotilla({
      registries: { [registry.host]: registry.url }, tls: true, readyTimeoutMs: 30_000,
      args: ['--role', 'mirror', '--htpasswd', htpasswd, '--tls-cert', cert, '--tls-key', key, '--default-registry', registry.host, '--metrics-listen', `127.0.0.1:${metricsPort}`],
    })
  })

  after(async () => {
    await mirror?.stop()
    await registry?.stop()
    await work?.cleanup()
  })

  test('no credentials, wrong ones, an unknown user: 401 with a Basic challenge and an OCI error body, counted by reason', async () => {
    for (const [auth, reason] of [[undefined, 'missing'], [basic('alice', 'nope'), 'wrong-password'], [basic('eve', 's3cret'), 'unknown-user']] as const) {
      const r = await get(`/v2/central/app/manifests/${image.tag}`, auth)
      assert.equal(r.status, 401, `${reason}: ${r.text}`)
      assert.equal(r.headers['www-authenticate'], 'Basic realm="flotilla"')
      assert.equal((JSON.parse(r.text) as { errors: Array<{ code: string }> }).errors[0]?.code, 'UNAUTHORIZED')
      const metrics = await (await fetch(metricsUrl, { signal: AbortSignal.timeout(5000) })).text()
      assert.ok(sumMetric(metrics, 'flotilla_auth_failures_total', { reason }) >= 1, reason)
    }
    // Probes stay open to load balancers.
    assert.equal((await get('/healthz')).status, 200)
  })

  test('with the right credentials skopeo pulls the image through the mirror', async () => {
    assert.equal((await get('/v2/', basic('alice', 's3cret'))).status, 200)
    const certs = join(work.path, 'certs.d')
    await mkdir(certs, { recursive: true })
    await writeFile(join(certs, 'ca.crt'), ca)
    const out = join(work.path, 'pulled')
    await runCommandChecked('skopeo', ['--override-arch', hostArchitecture(), 'copy', '--src-cert-dir', certs, '--src-creds', 'alice:s3cret',
      `docker://${mirror.host}/central/app:${image.tag}`, `oci:${out}:x`], { timeoutMs: 60_000 })
    const metrics = await (await fetch(metricsUrl, { signal: AbortSignal.timeout(5000) })).text()
    assert.ok(sumMetric(metrics, 'flotilla_upstream_bytes_total') >= image.largeLayerSize, 'the mirror fetched the layer upstream')
  })

  test('a mirror with no way to authenticate its clients does not start, and says why in one line', async () => {
    const [cmd, args] = flotillaCommand(['serve', '--role', 'mirror', '--listen', `127.0.0.1:${await freePort()}`, '--data-dir', join(work.path, 'noauth')])
    const r = await runCommand(cmd, args, { timeoutMs: 30_000 })
    assert.notEqual(r.code, 0)
    assert.match(r.stderr, /role mirror: clients must authenticate: set auth\.htpasswd and\/or auth\.allowCidrs, or auth\.anonymous: true/)
  })
})
