// Issue 11 (pre-cache) on one node, with real parts: Distribution as the upstream (behind a counting proxy),
// a real containerd 1.6 whose CRI pulls through the agent (hosts.toml), and the agent itself pulling and
// pinning the images of the sets that select the node. Checks 1, 2, 3, 4, 7 and 5 of the issue, in that
// order (5 stops the upstream, so it comes last). The pre-cache file is a ConfigMap-style mount:
// `precache.yaml -> ..data/precache.yaml`, `..data -> ..<timestamp>`, updated by symlink swaps (and once
// by rewriting the file).
import assert from 'node:assert/strict'
import { mkdir, readFile, readlink, rename, rm, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { ContainerdClient, type ContainerdImage } from '../../src/containerd/containerd-client.js'
import { parseContainerdEvent, type ContainerdEvent } from '../../src/containerd/containerd-events.js'
import type { PrecacheImageStatus, PrecacheStatus } from '../../src/precache/precache-status.js'
import { startProcess, type ProcessHandle } from '../helpers/child-process.js'
import { startContainerd, writeHostsToml, type Containerd } from '../helpers/containerd.js'
import { startCountingProxy, type CountingProxy } from '../helpers/counting-proxy.js'
import { startDistribution, type Distribution } from '../helpers/distribution.js'
import { flotillaCommand, sumMetric } from '../helpers/flotilla-agent.js'
import { freePort } from '../helpers/free-port.js'
import { makeTempDir, type TempDir } from '../helpers/temp-dir.js'
import { buildTestImage, pushTestImage, type TestImage } from '../helpers/test-image.js'
import { waitFor } from '../helpers/wait-for.js'

const NS = 'k8s.io'
const PIN = 'io.cri-containerd.pinned'
const SETS = 'dev.flotilla.precache.sets'
const OWN_PIN = 'dev.flotilla.precache.pinned'
const TAG = 'v1'
const REFRESH = '3s'
const REFRESH_MS = 3000
const BAD_REFS = ['UPPER/Case::bad', 'registry.example.com/x@sha256:nothex'] as const
const FILE_NOT_TAKEN = 'pre-cache file not taken'

interface LogLine { level?: number, msg?: string, file?: string, image?: string, [k: string]: unknown }

/** The pre-cache file as Kubernetes mounts a ConfigMap: every update is an atomic swap of the `..data` symlink. */
class ConfigMapMount {
  readonly file: string
  #generation = 0
  #current: string | undefined

  constructor (readonly dir: string) {
    this.file = join(dir, 'precache.yaml')
  }

  /** kubelet's AtomicWriter: a new timestamped dir, `..data_tmp` pointing at it, renamed over `..data`, the old dir removed. */
  async swap (text: string): Promise<void> {
    const next = `..2024_01_01_00_00_${String(++this.#generation).padStart(2, '0')}.${process.pid}`
    await mkdir(join(this.dir, next))
    await writeFile(join(this.dir, next, 'precache.yaml'), text)
    const tmpLink = join(this.dir, '..data_tmp')
    await rm(tmpLink, { force: true })
    await symlink(next, tmpLink)
    await rename(tmpLink, join(this.dir, '..data'))
    if (this.#current === undefined) await symlink(join('..data', 'precache.yaml'), this.file)
    else await rm(join(this.dir, this.#current), { recursive: true, force: true })
    this.#current = next
  }

  /** The file rewritten where it is (an editor's save: a new file renamed over it), no symlink touched. */
  async rewrite (text: string): Promise<void> {
    const target = join(this.dir, await readlink(join(this.dir, '..data')), 'precache.yaml')
    await writeFile(`${target}.tmp`, text)
    await rename(`${target}.tmp`, target)
  }
}

void describe('pre-cache into a real containerd on one node (issue 11: checks 1, 2, 3, 4, 7, 5)', { timeout: 300_000 }, () => {
  const cleanups: Array<() => Promise<void>> = []
  let work: TempDir
  let registry: Distribution
  let proxy: CountingProxy
  let containerd: Containerd
  let client: ContainerdClient
  let img1: TestImage
  let img2: TestImage
  let mount: ConfigMapMount
  let agent: ProcessHandle | undefined
  let agentRun = 0
  let agentStartedAt = 0
  let port: number
  let dataDir: string
  /** Index into proxy.requests where the agent's first run began. */
  let firstAgentRequest = 0

  const ref = (repo: string): string => `${proxy.host}/pc/${repo}:${TAG}`
  const agentUrl = (): string => `http://127.0.0.1:${port}`
  const logFile = (run: number): string => join(work.path, `agent-${run}.log`)
  let names: {
    web: string, sidecar: string, core: string, extra: string, foreign: string, gone: string, loner: string
  }

  /** The pre-cache file's text: set edge (tier=edge) and core (tier=core) always, extra and gone while asked for. */
  function spec (o: { extra: boolean, gone: boolean, bad?: boolean }): string {
    const lines = [
      'sets:',
      '  - name: edge',
      '    nodeSelector: { tier: edge }',
      `    refresh: ${REFRESH}`,
      '    images:',
      `      - ${names.web}`,
      `      - "${names.sidecar}"`,
      ...(o.bad === true ? BAD_REFS.map((r) => `      - "${r}"`) : []),
      '  - name: core',
      '    nodeSelector: { tier: core }',
      `    refresh: ${REFRESH}`,
      '    images:',
      `      - ${names.core}`,
    ]
    if (o.extra) {
      lines.push('  - name: extra', '    nodeSelector:', '      tier: edge', `    refresh: ${REFRESH}`, '    images:', `      - ${names.extra}`, `      - ${names.foreign}`)
    }
    if (o.gone) lines.push('  - name: gone', `    refresh: ${REFRESH}`, `    images: [${names.gone}]`)
    return `${lines.join('\n')}\n`
  }

  async function startAgent (): Promise<ProcessHandle> {
    const run = ++agentRun
    const [cmd, args] = flotillaCommand(['serve', '--listen', `127.0.0.1:${port}`, '--data-dir', dataDir, '--log-level', 'info',
      '--registry', `${proxy.host}=${proxy.url}`, '--containerd-socket', containerd.socket, '--containerd-namespace', NS,
      '--precache', mount.file, '--node-labels', 'tier=edge'])
    const proc = await startProcess(cmd, args, {
      name: `flotilla-precache-${run}`, logFile: logFile(run), env: { ...process.env, FLOTILLA_CONFIG: '' }, readyTimeoutMs: 30_000,
      readyCheck: async () => {
        try {
          const res = await fetch(`${agentUrl()}/readyz`, { signal: AbortSignal.timeout(1000) })
          await res.arrayBuffer()
          return res.status === 200
        } catch {
          return false
        }
      },
    })
    agentStartedAt = Date.now()
    return proc
  }

  async function status (): Promise<PrecacheStatus> {
    const res = await fetch(`${agentUrl()}/status/precache`, { signal: AbortSignal.timeout(5000) })
    assert.equal(res.status, 200, 'GET /status/precache')
    return await res.json() as PrecacheStatus
  }

  function imageStatus (s: PrecacheStatus, set: string, ref: string): PrecacheImageStatus | undefined {
    return s.sets.find((x) => x.name === set)?.images.find((i) => i.ref === ref)
  }

  async function logLines (run: number): Promise<LogLine[]> {
    const text = await readFile(logFile(run), 'utf8').catch(() => '')
    return text.split('\n').flatMap((line) => {
      if (!line.startsWith('{')) return []
      try {
        return [JSON.parse(line) as LogLine]
      } catch {
        return []
      }
    })
  }

  async function record (name: string): Promise<ContainerdImage | undefined> {
    return await client.getImage(name, AbortSignal.timeout(5000))
  }

  /** Held in containerd with this digest, pinned by flotilla for exactly these sets, and Ready in the status. */
  async function isPrecached (name: string, digest: string, sets: string, set = sets): Promise<boolean> {
    const r = await record(name)
    if (r?.target.digest !== digest || r.labels[PIN] !== 'pinned' || r.labels[OWN_PIN] !== 'true' || r.labels[SETS] !== sets) return false
    const s = imageStatus(await status(), set, name)
    return s?.phase === 'Ready' && s.digest === digest && s.pinned
  }

  async function describeState (name: string, set: string): Promise<string> {
    const [r, s] = await Promise.all([record(name).catch((err: unknown) => String(err)), status().catch((err: unknown) => String(err))])
    return `containerd: ${JSON.stringify(r)}; status: ${JSON.stringify(typeof s === 'string' ? s : imageStatus(s, set, name))}`
  }

  async function waitPrecached (name: string, digest: string, sets: string, timeoutMs: number, set = sets): Promise<void> {
    try {
      await waitFor(async () => await isPrecached(name, digest, sets, set), { timeoutMs, intervalMs: 200, what: `${name} pre-cached (${digest}, sets ${sets})` })
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${await describeState(name, set)}`, { cause: err })
    }
  }

  /** Requests that reached the upstream for a repository (any path under /v2/pc/<repo>/). */
  const upstreamRequests = (repo: string): number => proxy.requests.filter((r) => r.path.startsWith(`/v2/pc/${repo}/`)).length

  before(async () => {
    work = await makeTempDir('precache-containerd')
    cleanups.push(() => work.cleanup())
    const [startedRegistry, startedContainerd, built1, built2] = await Promise.all([
      startDistribution(),
      startContainerd({ namespace: NS }),
      buildTestImage({ workDir: work.path, largeLayerMiB: 1, tag: TAG }),
      buildTestImage({ workDir: work.path, largeLayerMiB: 2, tag: TAG }),
    ])
    registry = startedRegistry
    cleanups.push(() => registry.stop())
    containerd = startedContainerd
    cleanups.push(() => containerd.stop())
    img1 = built1
    img2 = built2
    assert.notEqual(img1.indexDigest, img2.indexDigest, 'two different images')
    proxy = await startCountingProxy({ upstreamUrl: registry.url })
    cleanups.push(() => proxy.close())
    // Pushed straight to Distribution: the proxy counts only what the node and the agent ask for.
    for (const repo of ['web', 'sidecar', 'core', 'extra', 'foreign', 'gone', 'loner']) await pushTestImage(img1.layoutDir, registry.host, `pc/${repo}`, TAG)
    names = {
      web: ref('web'),
      sidecar: `${proxy.host}/pc/sidecar@${img1.indexDigest}`,
      core: ref('core'),
      extra: ref('extra'),
      foreign: ref('foreign'),
      gone: ref('gone'),
      loner: ref('loner'),
    }
    client = new ContainerdClient({ socket: containerd.socket, namespace: NS, callTimeoutMs: 5000 })
    cleanups.push(async () => { client.close() })

    // Two images the node already has, pinned by someone else: foreign is also in set extra, loner in no set.
    const direct = join(work.path, 'no-hosts.d')
    await mkdir(direct)
    for (const name of [names.foreign, names.loner]) {
      await containerd.pull(name, { hostsDir: direct, timeoutMs: 60_000 })
      const labelled = await containerd.ctr(['images', 'label', name, `${PIN}=pinned`], { timeoutMs: 10_000 })
      assert.equal(labelled.code, 0, labelled.stderr)
    }

    port = await freePort()
    dataDir = join(work.path, 'data')
    // CRI (containerd's registry.config_path) sends pulls for the upstream's host to the agent first.
    await writeHostsToml(containerd.certsDir, proxy.host, { server: proxy.url, mirrors: [{ url: agentUrl(), dialTimeout: '1s' }] })
    mount = new ConfigMapMount(join(work.path, 'precache'))
    await mkdir(mount.dir)
    await mount.swap(spec({ extra: true, gone: true }))

    firstAgentRequest = proxy.requests.length
    agent = await startAgent()
    cleanups.push(async () => { await agent?.stop('SIGTERM', 15_000) })
  })

  after(async () => {
    const errors: unknown[] = []
    for (const cleanup of cleanups.reverse()) await cleanup().catch((err: unknown) => errors.push(err))
    if (errors.length > 0) throw new AggregateError(errors, 'teardown failed')
  })

  void test('1. within 60 s the matching sets\' images are in containerd, pinned, Ready; the other set\'s were never pulled', async (t) => {
    const deadline = agentStartedAt + 60_000
    const left = (): number => Math.max(1, deadline - Date.now())
    await waitPrecached(names.web, img1.indexDigest, 'edge', left())
    await waitPrecached(names.sidecar, img1.indexDigest, 'edge', left())
    await waitPrecached(names.extra, img1.indexDigest, 'extra', left())
    await waitPrecached(names.gone, img1.indexDigest, 'gone', left())
    // foreign carried a pin of someone else's: flotilla names its set but does not claim the pin.
    await waitFor(async () => {
      const r = await record(names.foreign)
      const s = imageStatus(await status(), 'extra', names.foreign)
      return r?.labels[SETS] === 'extra' && s?.phase === 'Ready' && s.pinned
    }, { timeoutMs: left(), intervalMs: 200, what: 'foreign ready in set extra' })
    t.diagnostic(`all pre-cached ${((Date.now() - agentStartedAt) / 1000).toFixed(1)} s after the agent was ready`)
    const foreign = await record(names.foreign)
    assert.equal(foreign?.labels[PIN], 'pinned')
    assert.equal(foreign?.labels[OWN_PIN], undefined, 'flotilla did not set that pin')

    // ctr sees the same labels.
    const ls = await containerd.ctr(['images', 'ls'], { timeoutMs: 10_000 })
    assert.equal(ls.code, 0, ls.stderr)
    const webLine = ls.stdout.split('\n').find((l) => l.split(/\s+/)[0] === names.web)
    assert.ok(webLine?.includes(`${PIN}=pinned`) === true && webLine.includes(`${SETS}=edge`), `ctr images ls:\n${ls.stdout}`)

    // The set that does not match: not in containerd, never asked of the upstream, no images in the status.
    assert.equal(await record(names.core), undefined, 'core:v1 is not in containerd')
    assert.ok(!ls.stdout.includes('/pc/core'), `ctr images ls lists nothing of pc/core:\n${ls.stdout}`)
    assert.equal(upstreamRequests('core'), 0, 'the upstream never served pc/core')
    const s = await status()
    assert.equal(s.mode, 'containerd')
    assert.equal(s.fileError, null)
    assert.deepEqual(s.nodeLabels, { tier: 'edge' })
    assert.deepEqual(s.sets.map((x) => [x.name, x.matches]), [['edge', true], ['core', false], ['extra', true], ['gone', true]])
    assert.deepEqual(s.sets.find((x) => x.name === 'core')?.images, [])
    const web = imageStatus(s, 'edge', names.web)
    assert.ok(web?.lastConfirmed != null && Date.parse(web.lastConfirmed) >= agentStartedAt - 60_000, `lastConfirmed ${String(web?.lastConfirmed)}`)
    assert.ok((web?.bytes ?? 0) > 0, `bytes ${String(web?.bytes)}`)
    assert.equal(web?.error, null)

    // The agent pulled through hosts.toml: every request for the pre-cached images reached the upstream from
    // the agent (user agent flotilla), none from containerd falling back to the server.
    const fromContainerd = proxy.requests.slice(firstAgentRequest).filter((r) => String(r.headers['user-agent']).startsWith('containerd'))
    assert.deepEqual(fromContainerd.map((r) => r.path), [], 'containerd went around the agent')
    assert.ok(upstreamRequests('web') > 0, 'the agent fetched pc/web from the upstream')

    const metrics = await (await fetch(`${agentUrl()}/metrics`, { signal: AbortSignal.timeout(5000) })).text()
    assert.equal(sumMetric(metrics, 'flotilla_precache_images', { set: 'edge', phase: 'Ready' }), 2, metrics.split('\n').filter((l) => l.includes('precache')).join('\n'))
    assert.equal(sumMetric(metrics, 'flotilla_precache_images', { set: 'core' }), 0)
  })

  void test('2. an image removed with ctr images rm is back, pinned, within 15 s', async (t) => {
    const removed = await containerd.ctr(['images', 'rm', names.web], { timeoutMs: 10_000 })
    assert.equal(removed.code, 0, removed.stderr)
    const started = Date.now()
    assert.equal(await record(names.web), undefined, 'removed')
    await waitPrecached(names.web, img1.indexDigest, 'edge', 15_000)
    t.diagnostic(`back and pinned after ${Date.now() - started} ms`)
    assert.ok((await logLines(agentRun)).some((l) => l.image === names.web && /removed from the node/.test(l.msg ?? '')), 'the agent logged the removal')
  })

  void test('3. a tag pushed with new content upstream: containerd has the new digest within refresh + a few seconds, pinned; the old image keeps no flotilla label', async (t) => {
    await pushTestImage(img2.layoutDir, registry.host, 'pc/web', TAG)
    const pushedAt = Date.now()
    await waitPrecached(names.web, img2.indexDigest, 'edge', REFRESH_MS * 1.1 + 12_000)
    t.diagnostic(`new digest pinned ${Date.now() - pushedAt} ms after the push (refresh ${REFRESH})`)
    const old = await record(`${proxy.host}/pc/web@${img1.indexDigest}`)
    t.diagnostic(`old repo@digest record: ${JSON.stringify(old?.labels ?? null)}`)
    const olds = (await client.listImages([], AbortSignal.timeout(5000))).filter((i) => i.name.startsWith(`${proxy.host}/pc/web`) && i.target.digest === img1.indexDigest)
    for (const o of olds) {
      assert.deepEqual(Object.keys(o.labels).filter((k) => k.startsWith('dev.flotilla.')), [], `${o.name}: ${JSON.stringify(o.labels)}`)
      assert.equal(o.labels[PIN], undefined, `${o.name} is not pinned: ${JSON.stringify(o.labels)}`)
    }
    // The digest reference and the other sets did not move.
    assert.ok(await isPrecached(names.sidecar, img1.indexDigest, 'edge'), await describeState(names.sidecar, 'edge'))
    assert.ok(await isPrecached(names.extra, img1.indexDigest, 'extra'), await describeState(names.extra, 'extra'))
    assert.equal(upstreamRequests('core'), 0, 'still nothing of pc/core asked upstream')
    assert.equal(await record(names.core), undefined)
  })

  void test('4. a set removed from the file (rewritten, then by a ConfigMap symlink swap): flotilla\'s pins go within 15 s, other pins stay', async (t) => {
    const lonerBefore = await record(names.loner)
    assert.equal(lonerBefore?.labels[PIN], 'pinned')
    assert.equal(lonerBefore.labels[SETS], undefined, 'flotilla never labelled an image no set wants')

    // The file rewritten in place (inside the mounted dir, no symlink changes): set extra goes.
    await mount.rewrite(spec({ extra: false, gone: true }))
    let started = Date.now()
    await waitFor(async () => {
      const [extra, foreign] = await Promise.all([record(names.extra), record(names.foreign)])
      return extra !== undefined && extra.labels[PIN] === undefined && extra.labels[OWN_PIN] === undefined && extra.labels[SETS] === undefined &&
        foreign !== undefined && foreign.labels[SETS] === undefined
    }, { timeoutMs: 15_000, intervalMs: 200, what: 'flotilla to unpin set extra\'s images' })
    t.diagnostic(`rewrite: set extra unpinned after ${Date.now() - started} ms`)
    const foreign = await record(names.foreign)
    assert.equal(foreign?.labels[PIN], 'pinned', `the pin flotilla did not set stays: ${JSON.stringify(foreign?.labels)}`)
    assert.equal(foreign.target.digest, img1.indexDigest, 'the image itself stays')
    assert.deepEqual((await record(names.loner))?.labels, lonerBefore.labels, 'loner untouched')
    assert.deepEqual((await status()).sets.map((x) => x.name), ['edge', 'core', 'gone'])

    // A ConfigMap update: set gone goes.
    await mount.swap(spec({ extra: false, gone: false }))
    started = Date.now()
    await waitFor(async () => {
      const gone = await record(names.gone)
      return gone !== undefined && gone.labels[PIN] === undefined && gone.labels[OWN_PIN] === undefined && gone.labels[SETS] === undefined
    }, { timeoutMs: 15_000, intervalMs: 200, what: 'flotilla to unpin set gone\'s image' })
    t.diagnostic(`symlink swap: set gone unpinned after ${Date.now() - started} ms`)
    assert.equal((await record(names.foreign))?.labels[PIN], 'pinned')
    assert.deepEqual((await record(names.loner))?.labels, lonerBefore.labels, 'loner untouched')
    const s = await status()
    assert.equal(s.fileError, null)
    assert.deepEqual(s.sets.map((x) => x.name), ['edge', 'core'])
    // The sets that stay keep their pins.
    assert.ok(await isPrecached(names.web, img2.indexDigest, 'edge'), await describeState(names.web, 'edge'))
    assert.ok(await isPrecached(names.sidecar, img1.indexDigest, 'edge'), await describeState(names.sidecar, 'edge'))
    const pinnedByFlotilla = (await client.listImages([], AbortSignal.timeout(5000))).filter((i) => i.labels[SETS] !== undefined || i.labels[OWN_PIN] !== undefined).map((i) => i.name).sort()
    assert.deepEqual(pinnedByFlotilla, [names.sidecar, names.web].sort())
  })

  void test('7. bad references fail alone; a broken file keeps the last good sets, shows in the status and logs one line', async (t) => {
    await mount.swap(spec({ extra: false, gone: false, bad: true }))
    await waitFor(async () => (await status()).sets.find((x) => x.name === 'edge')?.images.length === 4, { timeoutMs: 15_000, intervalMs: 200, what: 'the file with bad references taken' })
    let s = await status()
    assert.equal(s.fileError, null, 'a bad reference does not make the file bad')
    for (const bad of BAD_REFS) {
      const i = imageStatus(s, 'edge', bad)
      assert.equal(i?.phase, 'Failed', `${bad}: ${JSON.stringify(i)}`)
      assert.match(i.error ?? '', /not an image reference/, `${bad}: ${JSON.stringify(i)}`)
      assert.equal(i.pinned, false)
    }
    assert.match(imageStatus(s, 'edge', BAD_REFS[1])?.error ?? '', /digest/, 'says what is wrong with the digest')
    assert.ok(await isPrecached(names.web, img2.indexDigest, 'edge'), await describeState(names.web, 'edge'))
    assert.ok(await isPrecached(names.sidecar, img1.indexDigest, 'edge'), await describeState(names.sidecar, 'edge'))
    const metrics = await (await fetch(`${agentUrl()}/metrics`, { signal: AbortSignal.timeout(5000) })).text()
    assert.equal(sumMetric(metrics, 'flotilla_precache_images', { set: 'edge', phase: 'Failed' }), 2)
    assert.equal(sumMetric(metrics, 'flotilla_precache_images', { set: 'edge', phase: 'Ready' }), 2)

    // Not YAML at all, written over the good file.
    const before = (await logLines(agentRun)).filter((l) => (l.msg ?? '').startsWith(FILE_NOT_TAKEN)).length
    assert.equal(before, 0, 'no file problem so far')
    await mount.swap('sets: [ { name: edge\n  images: : : [\n')
    await waitFor(async () => (await status()).fileError !== null, { timeoutMs: 15_000, intervalMs: 200, what: 'the broken file reported in the status' })
    s = await status()
    t.diagnostic(`fileError: ${String(s.fileError)}`)
    assert.match(s.fileError ?? '', /precache\.yaml/, 'names the file')
    assert.match(s.fileError ?? '', /YAML/, 'says it is not YAML')
    // The last good sets stay in force.
    assert.deepEqual(s.sets.map((x) => x.name), ['edge', 'core'])
    assert.equal(imageStatus(s, 'edge', BAD_REFS[0])?.phase, 'Failed')
    assert.ok(await isPrecached(names.web, img2.indexDigest, 'edge'), await describeState(names.web, 'edge'))
    assert.ok(await isPrecached(names.sidecar, img1.indexDigest, 'edge'), await describeState(names.sidecar, 'edge'))
    // Several polls (every 2 s) and a refresh pass: still one line, and nothing unpinned.
    await new Promise((resolve) => setTimeout(resolve, 5000))
    const problems = (await logLines(agentRun)).filter((l) => (l.msg ?? '').startsWith(FILE_NOT_TAKEN))
    assert.equal(problems.length, 1, `one log line for the broken file: ${JSON.stringify(problems)}`)
    assert.match(`${problems[0]?.file ?? ''} ${problems[0]?.msg ?? ''}`, /precache\.yaml/)
    assert.ok(await isPrecached(names.web, img2.indexDigest, 'edge'), await describeState(names.web, 'edge'))
    assert.ok(await isPrecached(names.sidecar, img1.indexDigest, 'edge'), await describeState(names.sidecar, 'edge'))

    // Good again.
    await mount.swap(spec({ extra: false, gone: false }))
    await waitFor(async () => {
      const x = await status()
      return x.fileError === null && x.sets.find((y) => y.name === 'edge')?.images.length === 2
    }, { timeoutMs: 15_000, intervalMs: 200, what: 'the good file taken again' })
  })

  void test('5. upstream stopped, agent restarted on the same data: everything stays Ready, nothing pulled or unpinned', async (t) => {
    const wanted: Array<[string, string]> = [[names.web, img2.indexDigest], [names.sidecar, img1.indexDigest]]
    for (const [name, digest] of wanted) await waitPrecached(name, digest, 'edge', 15_000)
    const snapshot = async (): Promise<string> => JSON.stringify((await client.listImages([], AbortSignal.timeout(5000)))
      .map((i) => ({ name: i.name, digest: i.target.digest, labels: Object.entries(i.labels).sort(([a], [b]) => a.localeCompare(b)) }))
      .sort((a, b) => a.name.localeCompare(b.name)))
    const beforeImages = await snapshot()
    const lsBefore = await containerd.ctr(['images', 'ls'], { timeoutMs: 10_000 })

    const events: ContainerdEvent[] = []
    let isConnected = false
    const subscription = client.subscribe(['topic~="^/images/"'], {
      onEvent: (envelope) => {
        const e = parseContainerdEvent(envelope)
        if (e !== undefined && e.namespace === NS) events.push(e)
      },
      onConnect: () => { isConnected = true },
    })
    try {
      await waitFor(() => isConnected, { timeoutMs: 10_000, what: 'the containerd event subscription' })
      await proxy.setMode('refuse')
      const stoppedAt = Date.now()
      await agent?.stop('SIGTERM', 15_000)
      assert.equal(await snapshot(), beforeImages, 'stopping the agent changed nothing in containerd')
      const requestsBefore = proxy.requests.length
      agent = await startAgent()
      await waitFor(async () => {
        const s = await status()
        const edge = s.sets.find((x) => x.name === 'edge')
        return edge?.images.length === 2 && edge.images.every((i) => i.phase === 'Ready' && i.pinned)
      }, { timeoutMs: 30_000, intervalMs: 200, what: 'the restarted agent to report the images Ready' })
      let s = await status()
      for (const [name, digest] of wanted) {
        assert.equal(imageStatus(s, 'edge', name)?.digest, digest, name)
      }
      // At least two refresh passes with the upstream gone: still Ready, nothing pulled or unpinned.
      await new Promise((resolve) => setTimeout(resolve, 2 * REFRESH_MS + 1000))
      s = await status()
      for (const [name, digest] of wanted) {
        const i = imageStatus(s, 'edge', name)
        assert.equal(i?.phase, 'Ready', `${name}: ${JSON.stringify(i)}`)
        assert.equal(i.digest, digest)
        assert.equal(i.pinned, true)
      }
      const web = imageStatus(s, 'edge', names.web)
      t.diagnostic(`after restart: web lastConfirmed ${String(web?.lastConfirmed)}, error ${String(web?.error)}`)
      assert.ok(web?.lastConfirmed != null && Date.parse(web.lastConfirmed) <= stoppedAt && Date.parse(web.lastConfirmed) > stoppedAt - 60_000,
        `lastConfirmed is the last confirmation before the upstream stopped (${new Date(stoppedAt).toISOString()}), not a later time: ${String(web?.lastConfirmed)}`)
      assert.deepEqual(events, [], 'no image created, updated or deleted in containerd')
      assert.equal(await snapshot(), beforeImages, 'containerd\'s records unchanged')
      const lsAfter = await containerd.ctr(['images', 'ls'], { timeoutMs: 10_000 })
      assert.equal(lsAfter.stdout, lsBefore.stdout)
      assert.equal(proxy.requests.length, requestsBefore, 'nothing reached the stopped upstream')
      const lines = await logLines(agentRun)
      const actions = lines.filter((l) => /pre-caching image|tag moved|pin removed/.test(l.msg ?? ''))
      assert.deepEqual(actions.map((l) => `${l.msg ?? ''} ${l.image ?? ''}`), [], 'the restarted agent pulled or unpinned nothing')
    } finally {
      subscription.close()
    }
  })
})
