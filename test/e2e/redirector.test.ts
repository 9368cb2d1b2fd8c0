// Issue 15, checks 1–4: the redirector role with real parts. Three Distributions (the origin and two regions,
// copies of it) and `flotilla serve --role redirector` run in one network namespace; clients run in others:
// one whose address falls in a /24 region inside a /16 region, one in the /16 only, one outside both, and a
// trusted proxy. Each region's HEADs are counted in its Distribution's access log.
//
// The namespaces' own addresses (10.213.<net>.<i>/24) are fixed by the cluster helper; the clients also get a
// second address on a 10.1.0.0/16 network shared with the server, so that the regions are the issue's own
// example: eu-west 10.1.0.0/16 and eu-west-1a 10.1.4.0/24.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { cp, readdir, readFile, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, test, type TestContext } from 'node:test'
import { startProcess, type ProcessHandle } from '../helpers/child-process.js'
import { CLI_ENTRY, sumMetric } from '../helpers/flotilla-agent.js'
import { createNetnsCluster, type NetnsCluster, type NetnsHost } from '../helpers/netns-cluster.js'
import { pushFromNetns, startNetnsRegistry } from '../helpers/netns-registry.js'
import { blobDigestOf, readAccessLog, type AccessLogEntry } from '../helpers/registry-access-log.js'
import { runCommand } from '../helpers/run-command.js'
import { makeTempDir, type TempDir } from '../helpers/temp-dir.js'
import { buildTestImage, type TestImage } from '../helpers/test-image.js'
import { waitFor } from '../helpers/wait-for.js'

const REPO = 'redir/app'
/** srv: the Distributions and the redirector; a: in eu-west-1a (and so in eu-west); b: in eu-west only; out: in neither; proxy: a trusted proxy. */
const NAMES = ['srv', 'a', 'b', 'out', 'proxy'] as const
type Name = typeof NAMES[number]
const SRV_10_1 = '10.1.0.1'
const A_10_1 = '10.1.4.7'
const B_10_1 = '10.1.9.9'
const PORTS = { origin: 5001, 'eu-west': 5002, 'eu-west-1a': 5003 } as const
type Registry = keyof typeof PORTS
const CHECK_TIMEOUT_MS = 1000
/** What a request may take beyond the check bound: curl, the namespace, a loaded machine. */
const MARGIN_MS = 1000

interface Answer { code: number, location: string, seconds: number }
interface RedirectStatus {
  origin: string
  hosts: string[]
  regions: Array<{ name: string, blobBase: string, cidrs: string[], circuit: string, lastError: string | null }>
  tableError: string | null
  tableLoadedAt: string | null
}

void describe('the redirector: manifests from the origin, blobs from the nearest copy (issue 15, checks 1–4)', { timeout: 240_000 }, () => {
  let work: TempDir
  let cluster: NetnsCluster
  let image: TestImage
  /** Pushed to the origin and eu-west only: eu-west-1a lacks its config and large layer. */
  let image2: TestImage
  let srvIp: string
  let configFile: string
  let redirector: ProcessHandle | undefined
  const registries = new Map<Registry, ProcessHandle>()
  const host = (name: Name): NetnsHost => cluster.host(name)
  const base = (r: Registry): string => `http://${srvIp}:${PORTS[r]}`
  const logOf = (r: Registry): string => join(work.path, `${r}.log`)
  /** The redirector as each client reaches it: a and b over 10.1.0.0/16 (their source address is then their 10.1 one). */
  const redirectorFor = (name: Name): string => (name === 'a' || name === 'b') ? `${SRV_10_1}:5000` : `${srvIp}:5000`

  function configText (o: { narrowCidr?: string } = {}): string {
    return [
      'role: redirector',
      'redirect:',
      `  origin: ${base('origin')}`,
      '  regions:',
      `    - { name: eu-west, cidrs: [10.1.0.0/16, "2001:db8:1::/48"], blobBase: ${base('eu-west')} }`,
      `    - { name: eu-west-1a, cidrs: [${o.narrowCidr ?? '10.1.4.0/24'}], blobBase: ${base('eu-west-1a')}/ }`,
      `  trustedProxies: [${host('proxy').ip}/32]`,
      '  existenceTTL: 10m',
      '  missTTL: 60s',
      `  checkTimeout: ${CHECK_TIMEOUT_MS}ms`,
      '',
    ].join('\n')
  }

  /** Replaces the configuration file the way an editor or a ConfigMap does: a new file renamed over the old one. */
  async function writeConfig (text: string): Promise<void> {
    await writeFile(`${configFile}.tmp`, text)
    await rename(`${configFile}.tmp`, configFile)
  }

  async function srvGet (path: string): Promise<string> {
    const r = await host('srv').exec('curl', ['-sf', '--max-time', '5', `http://127.0.0.1:5000${path}`], 10_000)
    if (r.code !== 0) throw new Error(`GET ${path} on the redirector failed (${r.code}): ${r.stderr}`)
    return r.stdout
  }
  const redirectStatus = async (): Promise<RedirectStatus> => JSON.parse(await srvGet('/status/redirect')) as RedirectStatus
  const metrics = async (): Promise<string> => await srvGet('/metrics')

  /** One blob request from `name` (HEAD unless `get`), not followed: its status, Location and time. */
  async function ask (name: Name, digest: string, o: { forwardedFor?: string, get?: boolean, repo?: string } = {}): Promise<Answer> {
    const args = ['-s', '-o', '/dev/null', '--max-time', '20', '-w', '%{http_code} %{time_total} %{redirect_url}']
    if (o.get !== true) args.push('-I')
    if (o.forwardedFor !== undefined) args.push('-H', `X-Forwarded-For: ${o.forwardedFor}`)
    args.push(`http://${redirectorFor(name)}/v2/${o.repo ?? REPO}/blobs/${digest}`)
    const r = await host(name).exec('curl', args, 30_000)
    assert.equal(r.code, 0, `${name}: curl ${digest}: ${r.code} ${r.stderr}`)
    const [code = '', seconds = '', location = ''] = r.stdout.trim().split(' ')
    return { code: Number(code), seconds: Number(seconds), location }
  }
  const blobUrl = (r: Registry, digest: string, repo = REPO): string => `${base(r)}/v2/${repo}/blobs/${digest}`

  /** `skopeo copy --all` of `tag` through the redirector from `name` into a fresh OCI layout; its index digest. */
  async function pullThrough (name: Name, tag: string): Promise<{ indexDigest: string, blobs: string[] }> {
    const dir = join(work.path, `pull-${name}-${tag}-${randomBytes(3).toString('hex')}`)
    const r = await host(name).exec('skopeo', ['--insecure-policy', 'copy', '--quiet', '--all', '--preserve-digests', '--src-tls-verify=false',
      `docker://${redirectorFor(name)}/${REPO}:${tag}`, `oci:${dir}:${tag}`], 120_000)
    assert.equal(r.code, 0, `${name}: skopeo copy ${tag} through the redirector: ${r.stderr}`)
    const index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string }> }
    const blobs = (await readdir(join(dir, 'blobs', 'sha256'))).map((h) => `sha256:${h}`)
    return { indexDigest: index.manifests[0]?.digest ?? '', blobs }
  }

  const blobRequests = (log: AccessLogEntry[], method: string, digest?: string): AccessLogEntry[] =>
    log.filter((e) => e.method === method && blobDigestOf(e.path) !== undefined && (digest === undefined || blobDigestOf(e.path) === digest))

  function note (t: TestContext, line: string): void {
    t.diagnostic(line)
    console.log(`# ${line}`)
  }

  async function startRegistry (r: Registry): Promise<void> {
    registries.set(r, await startNetnsRegistry({
      cluster, host: host('srv'), dir: work.path, addr: `0.0.0.0:${PORTS[r]}`, name: `distribution-${r}`, logFile: logOf(r), accessLog: true, deleteEnabled: true,
    }))
  }

  async function push (img: TestImage, r: Registry): Promise<void> {
    await pushFromNetns(host('srv'), img.layoutDir, img.tag, `127.0.0.1:${PORTS[r]}/${REPO}:${img.tag}`)
  }

  before(async () => {
    work = await makeTempDir('redirector')
    configFile = join(work.path, 'redirector.yaml')
    ;[cluster, image, image2] = await Promise.all([
      createNetnsCluster(NAMES),
      buildTestImage({ largeLayerMiB: 3, tag: 'one' }),
      buildTestImage({ largeLayerMiB: 2, tag: 'two' }),
    ])
    srvIp = host('srv').ip
    // The shared /16: the server and the two region clients (each client's route to 10.1.0.1 then leaves from its 10.1 address).
    for (const [name, addr] of [['srv', SRV_10_1], ['a', A_10_1], ['b', B_10_1]] as const) {
      const r = await host(name).exec('ip', ['addr', 'add', `${addr}/16`, 'dev', 'eth0'], 10_000)
      assert.equal(r.code, 0, r.stderr)
    }
    await Promise.all((Object.keys(PORTS) as Registry[]).map(async (r) => { await startRegistry(r) }))
    // One push at a time per registry: Distribution's filesystem driver rewrites a layer link in place, so two
    // pushes of a shared blob into one repository can read it half-written and answer 500 (seen in CI).
    await Promise.all((Object.keys(PORTS) as Registry[]).map(async (r) => {
      await push(image, r)
      if (r === 'origin' || r === 'eu-west') await push(image2, r)
    }))
    // From here on the logs hold only what the redirector and the clients ask.
    for (const r of Object.keys(PORTS) as Registry[]) await writeFile(logOf(r), '')

    await writeFile(configFile, configText())
    const [cmd, args] = cluster.wrap(host('srv'), process.execPath, ['--import', 'tsx', CLI_ENTRY, 'serve', '--role', 'redirector',
      '--config', configFile, '--listen', '0.0.0.0:5000', '--data-dir', join(work.path, 'redirector-data'),
      '--log-level', process.env.FLOTILLA_TEST_LOG_LEVEL ?? 'info'])
    redirector = await startProcess(cmd, args, {
      name: 'redirector', logFile: join(work.path, 'redirector.log'), readyTimeoutMs: 60_000, readyIntervalMs: 200,
      readyCheck: async () => (await host('srv').exec('curl', ['-sf', '-o', '/dev/null', 'http://127.0.0.1:5000/readyz'], 5000)).code === 0,
    })
  })

  after(async () => {
    // A region stopped with SIGSTOP must be able to hear SIGTERM.
    for (const p of registries.values()) if (p.isRunning) { try { process.kill(p.pid, 'SIGCONT') } catch { /* gone */ } }
    await redirector?.stop('SIGTERM', 10_000)
    await Promise.all([...registries.values()].map(async (p) => await p.stop('SIGTERM', 5000)))
    await cluster?.destroy()
    if (process.env.FLOTILLA_KEEP_LOGS !== undefined) {
      await cp(work.path, process.env.FLOTILLA_KEEP_LOGS, { recursive: true, filter: (s) => !s.includes('/store-') && !s.includes('/pull-') && !s.includes('-data') })
    }
    await work?.cleanup()
  })

  test('1. each client is sent to its longest-prefix region, the outsider to the origin; skopeo through the redirector yields the upstream digests', async (t) => {
    const status = await redirectStatus()
    assert.equal(status.origin, base('origin'))
    assert.deepEqual([...status.hosts].sort(), (Object.keys(PORTS) as Registry[]).map((r) => `${srvIp}:${PORTS[r]}`).sort(), 'every host a client can be sent to')
    assert.deepEqual(status.regions.map((r) => [r.name, r.blobBase, r.circuit]), [['eu-west', base('eu-west'), 'closed'], ['eu-west-1a', base('eu-west-1a'), 'closed']])
    assert.equal(status.tableError, null)

    // The table's own answer, from the command line.
    for (const [address, expected] of [[A_10_1, /region eu-west-1a; blobs from http:\/\/[\d.]+:5003 /], [B_10_1, /region eu-west; blobs from http:\/\/[\d.]+:5002 /], [host('out').ip, /no region; blobs from the origin http:\/\/[\d.]+:5001/]] as const) {
      const r = await runCommand(process.execPath, ['--import', 'tsx', CLI_ENTRY, 'redirect', 'explain', address, '-c', configFile], { timeoutMs: 30_000 })
      assert.equal(r.code, 0, r.stderr)
      assert.match(r.stdout, expected)
    }

    const expected: Record<'a' | 'b' | 'out', Registry> = { a: 'eu-west-1a', b: 'eu-west', out: 'origin' }
    const large = image.largeLayerDigest
    for (const [name, r] of Object.entries(expected) as Array<['a' | 'b' | 'out', Registry]>) {
      for (const get of [false, true]) {
        const answer = await ask(name, large, { get })
        assert.equal(answer.code, 307, `${name}: ${JSON.stringify(answer)}`)
        assert.equal(answer.location, blobUrl(r, large), `${name} (${get ? 'GET' : 'HEAD'}) is sent to ${r}`)
      }
    }
    const pulls = await Promise.all((Object.keys(expected) as Array<keyof typeof expected>).map(async (name) => [name, await pullThrough(name, image.tag)] as const))
    for (const [name, pulled] of pulls) {
      assert.equal(pulled.indexDigest, image.indexDigest, `${name}: the index digest through the redirector`)
      for (const d of image.allDigests) assert.ok(pulled.blobs.includes(d), `${name}: ${d} copied`)
    }

    // Who served the blobs: each client's GETs landed at its own registry, and only there.
    const clientIps = { a: host('a').ip, b: host('b').ip, out: host('out').ip }
    for (const r of Object.keys(PORTS) as Registry[]) {
      const gets = blobRequests(await readAccessLog(logOf(r)), 'GET')
      const by = new Set(gets.map((e) => e.client))
      const mine = (Object.keys(expected) as Array<keyof typeof expected>).filter((n) => expected[n] === r).map((n) => clientIps[n])
      note(t, `${r}: ${gets.length} blob GETs, from ${[...by].join(', ')}`)
      assert.deepEqual([...by].sort(), mine.sort(), `${r} served blobs to exactly its clients`)
      const served = new Set(gets.filter((e) => e.status === 200).map((e) => blobDigestOf(e.path)))
      for (const d of image.allBlobDigests) assert.ok(served.has(d), `${r} served ${d}`)
    }
    // Manifests came through the redirector from the origin, never from a region.
    for (const r of ['eu-west', 'eu-west-1a'] as const) {
      const manifests = (await readAccessLog(logOf(r))).filter((e) => e.path.includes('/manifests/'))
      assert.deepEqual(manifests, [], `${r} was never asked for a manifest`)
    }
    const text = await metrics()
    note(t, `redirects: eu-west-1a ${sumMetric(text, 'flotilla_redirects_total', { region: 'eu-west-1a' })}, eu-west ${sumMetric(text, 'flotilla_redirects_total', { region: 'eu-west' })}; fallbacks no-region ${sumMetric(text, 'flotilla_redirect_fallbacks_total', { reason: 'no-region' })}`)
    assert.ok(sumMetric(text, 'flotilla_redirects_total', { region: 'eu-west-1a' }) >= image.allBlobDigests.length + 2)
    assert.ok(sumMetric(text, 'flotilla_redirects_total', { region: 'eu-west' }) >= image.allBlobDigests.length + 2)
    assert.ok(sumMetric(text, 'flotilla_redirect_fallbacks_total', { reason: 'no-region' }) >= image.allBlobDigests.length + 2)
  })

  test('2. a blob its region lacks: the region\'s clients go to the origin, and the miss is asked once within missTTL', async (t) => {
    const missing = image2.largeLayerDigest
    assert.ok(!image.allBlobDigests.includes(missing))
    const headsAt = async (r: Registry, digest: string): Promise<number> => blobRequests(await readAccessLog(logOf(r)), 'HEAD', digest).length
    assert.equal(await headsAt('eu-west-1a', missing), 0)

    // Ten at once (single-flighted), then ten one after another (cached).
    const burst = await Promise.all(Array.from({ length: 10 }, async () => await ask('a', missing)))
    const serial: Answer[] = []
    for (let i = 0; i < 10; i++) serial.push(await ask('a', missing, { get: i % 2 === 0 }))
    for (const a of [...burst, ...serial]) {
      assert.equal(a.code, 307)
      assert.equal(a.location, blobUrl('origin', missing), 'eu-west-1a lacks it: the origin')
    }
    const heads = await headsAt('eu-west-1a', missing)
    note(t, `20 requests for a blob eu-west-1a lacks: ${heads} HEAD at eu-west-1a; slowest answer ${Math.max(...[...burst, ...serial].map((a) => a.seconds)).toFixed(3)} s`)
    assert.equal(heads, 1, 'one HEAD at the region for 20 requests within missTTL')
    // eu-west has it: b is sent there (a's miss is eu-west-1a's, not the blob's).
    assert.equal((await ask('b', missing)).location, blobUrl('eu-west', missing))

    // A real pull of the image eu-west-1a half-lacks: the layer it has from it, the rest from the origin.
    const pulled = await pullThrough('a', image2.tag)
    assert.equal(pulled.indexDigest, image2.indexDigest)
    const fromOrigin = new Set(blobRequests(await readAccessLog(logOf('origin')), 'GET').filter((e) => e.client === host('a').ip).map((e) => blobDigestOf(e.path)))
    const fromRegion = new Set(blobRequests(await readAccessLog(logOf('eu-west-1a')), 'GET').filter((e) => e.client === host('a').ip && e.status === 200).map((e) => blobDigestOf(e.path)))
    const lacking = image2.allBlobDigests.filter((d) => !image.allBlobDigests.includes(d))
    const shared = image2.allBlobDigests.filter((d) => image.allBlobDigests.includes(d))
    assert.ok(shared.length > 0 && lacking.length > 0)
    for (const d of lacking) assert.ok(fromOrigin.has(d), `${d} (not in eu-west-1a) came from the origin`)
    for (const d of shared) assert.ok(fromRegion.has(d), `${d} (in eu-west-1a too) came from eu-west-1a`)
    assert.equal(await headsAt('eu-west-1a', missing), 1, 'still one HEAD for the missing layer')
    assert.ok(sumMetric(await metrics(), 'flotilla_redirect_fallbacks_total', { reason: 'region-lacks' }) >= 20 + lacking.length - 1)
  })

  test('4. X-Forwarded-For is ignored from an untrusted address and decides from a trusted proxy', async () => {
    const d = image.largeLayerDigest
    // From out (not a trusted proxy): whatever it claims, its own address decides.
    for (const claim of [A_10_1, `${A_10_1}, ${B_10_1}`, '2001:db8:1::7']) {
      const a = await ask('out', d, { forwardedFor: claim })
      assert.equal(a.location, blobUrl('origin', d), `untrusted X-Forwarded-For: ${claim}`)
    }
    // From a itself, a claim of b's address changes nothing either.
    assert.equal((await ask('a', d, { forwardedFor: B_10_1 })).location, blobUrl('eu-west-1a', d))
    // From the trusted proxy: the right-most hop decides (the one the proxy saw; hops to its left are the client's word).
    const cases: Array<[string | undefined, Registry]> = [
      [A_10_1, 'eu-west-1a'],
      [B_10_1, 'eu-west'],
      [`${A_10_1}, ${B_10_1}`, 'eu-west'],
      [`${B_10_1}, ${A_10_1}`, 'eu-west-1a'],
      [`${A_10_1}, ${host('proxy').ip}`, 'eu-west-1a'],
      [`${A_10_1}:41000`, 'eu-west-1a'],
      ['2001:db8:1::7', 'eu-west'],
      ['192.0.2.1', 'origin'],
      [undefined, 'origin'],
    ]
    for (const [claim, r] of cases) {
      const a = await ask('proxy', d, claim === undefined ? {} : { forwardedFor: claim })
      assert.equal(a.code, 307)
      assert.equal(a.location, blobUrl(r, d), `trusted proxy, X-Forwarded-For: ${claim ?? '(none)'}`)
    }
  })

  test('3. a region hung: its clients go to the origin within the check bound, its circuit opens, no answer stalls', async (t) => {
    const euWest = registries.get('eu-west')
    assert.ok(euWest !== undefined)
    // Hung, not refusing: the kernel still accepts connections, nothing answers. The worst case for a bound.
    // It stays stopped for the next test, which resumes it.
    process.kill(euWest.pid, 'SIGSTOP')
    const fresh = Array.from({ length: 8 }, () => `sha256:${randomBytes(32).toString('hex')}`)
    const answers: Answer[] = []
    for (const d of fresh) {
      const a = await ask('b', d)
      answers.push(a)
      assert.equal(a.code, 307)
      assert.equal(a.location, blobUrl('origin', d), 'eu-west does not answer: the origin')
      assert.ok(a.seconds * 1000 <= CHECK_TIMEOUT_MS + MARGIN_MS, `answered in ${a.seconds} s (bound ${CHECK_TIMEOUT_MS} ms + ${MARGIN_MS} ms)`)
    }
    note(t, `eu-west hung: answers for new digests in ${answers.map((a) => a.seconds.toFixed(3)).join(', ')} s`)
    // Many at once while the circuit is open: none waits.
    const burst = await Promise.all(Array.from({ length: 10 }, async () => await ask('b', `sha256:${randomBytes(32).toString('hex')}`)))
    note(t, `10 at once with the circuit open: slowest ${Math.max(...burst.map((a) => a.seconds)).toFixed(3)} s`)
    for (const a of burst) assert.ok(a.seconds < 0.5 && a.location.startsWith(base('origin')), JSON.stringify(a))
    const status = await redirectStatus()
    const w = status.regions.find((r) => r.name === 'eu-west')
    note(t, `eu-west on /status/redirect: ${JSON.stringify(w)}`)
    assert.equal(w?.circuit, 'open', 'a few failed checks open the circuit')
    assert.ok(w?.lastError !== null && w?.lastError !== undefined)
    assert.equal(status.regions.find((r) => r.name === 'eu-west-1a')?.circuit, 'closed', 'the other region is untouched')
    // Once open, the region is passed over at once.
    for (const a of answers.slice(-3)) assert.ok(a.seconds < 0.5, `with the circuit open: ${a.seconds} s`)
    assert.ok(sumMetric(await metrics(), 'flotilla_redirect_fallbacks_total', { reason: 'region-unavailable' }) >= fresh.length + burst.length)
    // a's region still serves a.
    assert.equal((await ask('a', image.largeLayerDigest)).location, blobUrl('eu-west-1a', image.largeLayerDigest))
  })

  test('3. a region hung: blobs it was known to hold go to the origin too, and its clients\' pulls complete', async (t) => {
    const euWest = registries.get('eu-west')
    assert.ok(euWest !== undefined)
    try {
      assert.equal((await redirectStatus()).regions.find((r) => r.name === 'eu-west')?.circuit, 'open')
      // Blobs eu-west was known to have (test 1).
      const known = await Promise.all(image.allBlobDigests.map(async (d) => [d, await ask('b', d)] as const))
      const toHung = known.filter(([, a]) => a.location.startsWith(base('eu-west')))
      note(t, `blobs eu-west was known to hold, asked by b while eu-west is hung and its circuit open: ${known.map(([d, a]) => `${d.slice(7, 19)} → ${a.location.split('/')[2] ?? a.location}`).join(', ')}`)
      const started = Date.now()
      const pulled = await Promise.race([
        pullThrough('b', image.tag).then((p) => p.indexDigest),
        new Promise<string>((resolve) => setTimeout(() => { resolve('stalled') }, 20_000).unref()),
      ])
      note(t, `b's skopeo copy with eu-west hung: ${pulled === 'stalled' ? 'no progress in 20 s' : `done in ${Date.now() - started} ms`}`)
      assert.deepEqual(toHung.map(([d]) => d), [], 'no client is sent to a region whose circuit is open')
      assert.equal(pulled, image.indexDigest)
    } finally {
      process.kill(euWest.pid, 'SIGCONT')
    }
  })

  test('3. a region stopped (connections refused): its clients go to the origin within the check bound', async (t) => {
    const euWest = registries.get('eu-west')
    assert.ok(euWest !== undefined)
    await euWest.stop('SIGTERM', 5000)
    // After the hang the circuit is open or (10 s on) half-open: either way the region is not waited for.
    note(t, `eu-west's circuit when it stops: ${(await redirectStatus()).regions.find((r) => r.name === 'eu-west')?.circuit ?? '?'}`)
    const answers: Answer[] = []
    for (let i = 0; i < 6; i++) {
      const d = `sha256:${randomBytes(32).toString('hex')}`
      const a = await ask('b', d)
      answers.push(a)
      assert.equal(a.location, blobUrl('origin', d))
      assert.ok(a.seconds * 1000 <= CHECK_TIMEOUT_MS + MARGIN_MS, `answered in ${a.seconds} s`)
    }
    const w = (await redirectStatus()).regions.find((r) => r.name === 'eu-west')
    note(t, `eu-west stopped: answers in ${answers.map((a) => a.seconds.toFixed(3)).join(', ')} s; on /status/redirect ${JSON.stringify(w)}`)
    assert.equal(w?.circuit, 'open')
  })

  test('the region table follows the file: a new version is picked up within seconds, a broken one keeps the last good table', async (t) => {
    const d = image.largeLayerDigest
    const before = await redirectStatus()
    assert.equal((await ask('a', d)).location, blobUrl('eu-west-1a', d))
    // eu-west-1a becomes b's /24 instead of a's.
    const started = Date.now()
    await writeConfig(configText({ narrowCidr: '10.1.9.0/24' }))
    await waitFor(async () => (await redirectStatus()).regions.find((r) => r.name === 'eu-west-1a')?.cidrs.includes('10.1.9.0/24') === true,
      { timeoutMs: 5000, intervalMs: 100, what: 'the new region table on /status/redirect' })
    note(t, `new table on /status/redirect after ${Date.now() - started} ms`)
    const now = await redirectStatus()
    assert.notEqual(now.tableLoadedAt, before.tableLoadedAt)
    assert.equal(now.tableError, null)
    assert.equal((await ask('b', d)).location, blobUrl('eu-west-1a', d), 'b is in eu-west-1a now')
    assert.equal((await ask('a', d)).location.startsWith(base('eu-west-1a')), false, 'a is not')

    // A broken version: the table stays, the status says why.
    await writeConfig(configText({ narrowCidr: '10.1.999.0/24' }))
    let status: RedirectStatus | undefined
    await waitFor(async () => { status = await redirectStatus(); return status.tableError !== null }, { timeoutMs: 6000, intervalMs: 100, what: 'tableError on /status/redirect' })
    note(t, `tableError: ${status?.tableError ?? ''}`)
    assert.match(status?.tableError ?? '', /10\.1\.999\.0\/24/)
    assert.deepEqual(status?.regions.map((r) => r.cidrs), now.regions.map((r) => r.cidrs), 'the last good table stays')
    assert.equal(status?.tableLoadedAt, now.tableLoadedAt)
    assert.equal((await ask('b', d)).location, blobUrl('eu-west-1a', d), 'decisions from the last good table')
    // Not YAML at all: still the last good table.
    await writeConfig('role: redirector\nredirect: [unclosed\n')
    await waitFor(async () => { status = await redirectStatus(); return status.tableError !== null && !status.tableError.includes('10.1.999') }, { timeoutMs: 6000, intervalMs: 100, what: 'a new tableError' })
    note(t, `tableError: ${status?.tableError ?? ''}`)
    assert.equal((await ask('b', d)).location, blobUrl('eu-west-1a', d))
    // Fixed again: the error clears.
    await writeConfig(configText())
    await waitFor(async () => { status = await redirectStatus(); return status.tableError === null && status.regions.find((r) => r.name === 'eu-west-1a')?.cidrs.includes('10.1.4.0/24') === true },
      { timeoutMs: 6000, intervalMs: 100, what: 'the original table back, no tableError' })
    assert.equal((await ask('a', d)).location, blobUrl('eu-west-1a', d))
  })
})
