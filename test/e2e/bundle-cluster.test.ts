// Issue 12, check 2: four agents in network namespaces, each next to its own containerd (the daemon runs in the
// agent's namespace, so its hosts.toml mirror is the agent at 127.0.0.1:5000), the upstream stopped: `flotilla
// load` of a bundle into n0's agent, then the kubelet's CRI pulls on n1, n2 and n3 get the image by tag through
// their own agents, from the peer network (the upstream — Distribution in a namespace of its own — is gone).
// Then the same with the upstream unreachable rather than stopped (its packets dropped, as behind a real air gap):
// a second bundle loaded into n0 and pulled on n1.
import assert from 'node:assert/strict'
import { cp, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { CriImageClient } from '../../src/containerd/cri-image-client.js'
import { generateClusterKey } from '../../src/p2p/cluster-key.js'
import { startProcess, type ProcessHandle } from '../helpers/child-process.js'
import { startContainerd, writeHostsToml, type Containerd } from '../helpers/containerd.js'
import { flotillaCommand, sumMetric } from '../helpers/flotilla-agent.js'
import { createNetnsCluster, type NetnsCluster, type NetnsHost } from '../helpers/netns-cluster.js'
import { pushFromNetns, startNetnsRegistry } from '../helpers/netns-registry.js'
import { readAccessLog } from '../helpers/registry-access-log.js'
import { makeTempDir, type TempDir } from '../helpers/temp-dir.js'
import { buildTestImage, hostArchitecture, hostManifest, type TestImage } from '../helpers/test-image.js'
import { waitFor } from '../helpers/wait-for.js'

const REPO = 'bundle/web'
const NODE_NAMES = ['n0', 'n1', 'n2', 'n3'] as const
const NAMES = ['up', ...NODE_NAMES] as const
type NodeName = typeof NODE_NAMES[number]
/** Each CRI pull on n1–n3, all three at once, right after the load. */
const PULL_WITHIN_MS = 60_000
/** A pull of what nobody holds, with the upstream down, must be refused at least this fast. */
const REFUSED_WITHIN_MS = 30_000
/** The second image, saved to its own bundle, for the unreachable-upstream case. */
const DARK_REPO = 'bundle/dark'

interface Node { name: NodeName, host: NetnsHost, containerd: Containerd, cri: CriImageClient, proc?: ProcessHandle }

void describe('an air-gap bundle loaded into one of four nodes (issue 12, check 2)', { timeout: 240_000 }, () => {
  let work: TempDir
  let cluster: NetnsCluster
  let image: TestImage
  let dark: TestImage
  let upstream: ProcessHandle | undefined
  let upHost: string
  let accessLog: string
  let keyFile: string
  let bundle: string
  let darkBundle: string
  let ref: string
  let darkRef: string
  const nodes: Node[] = []
  const host = (name: typeof NAMES[number]): NetnsHost => cluster.host(name)
  const node = (name: NodeName): Node => {
    const n = nodes.find((x) => x.name === name)
    assert.ok(n !== undefined)
    return n
  }

  async function agentGet (n: Node, path: string): Promise<string> {
    const r = await n.host.exec('curl', ['-sf', `http://127.0.0.1:5000${path}`], 10_000)
    if (r.code !== 0) throw new Error(`${n.name}: GET ${path} failed (${r.code}): ${r.stderr}`)
    return r.stdout
  }

  /** The flotilla CLI run inside a node's namespace (where 127.0.0.1:5000 is that node's agent). */
  async function flotillaIn (h: NetnsHost, args: readonly string[], timeoutMs = 120_000): Promise<Awaited<ReturnType<NetnsHost['exec']>>> {
    const [cmd, argv] = flotillaCommand(args)
    return await h.exec(cmd, argv, timeoutMs)
  }

  async function startAgent (n: Node): Promise<void> {
    const h = n.host
    const bootstrap = (['n0', 'n1'] as const).map((b) => `/ip4/${host(b).ip}/tcp/5001`)
    const [cmd, args] = cluster.wrap(h, ...flotillaCommand(['serve',
      '--listen', '0.0.0.0:5000', '--peer-address', `${h.ip}:5000`, '--data-dir', join(work.path, `data-${n.name}`),
      '--p2p-listen', `/ip4/${h.ip}/tcp/5001`, ...bootstrap.flatMap((b) => ['--bootstrap', b]),
      '--cluster-key-file', keyFile, '--registry', `${upHost}=http://${upHost}`, '--default-registry', upHost,
      '--log-level', process.env.FLOTILLA_TEST_LOG_LEVEL ?? 'info']))
    n.proc = await startProcess(cmd, args, {
      name: `agent-${n.name}`, logFile: join(work.path, `agent-${n.name}.log`), readyTimeoutMs: 60_000, readyIntervalMs: 200,
      env: { ...process.env, FLOTILLA_CONFIG: '' },
      readyCheck: async () => (await h.exec('curl', ['-sf', '-o', '/dev/null', 'http://127.0.0.1:5000/healthz'], 5000)).code === 0,
    })
  }

  before(async () => {
    work = await makeTempDir('bundle-cluster')
    accessLog = join(work.path, 'registry.log')
    keyFile = join(work.path, 'cluster.key')
    bundle = join(work.path, 'web.tar')
    darkBundle = join(work.path, 'dark.tar')
    await writeFile(keyFile, generateClusterKey(), { mode: 0o600 })
    ;[cluster, image, dark] = await Promise.all([createNetnsCluster(NAMES), buildTestImage({ largeLayerMiB: 6 }), buildTestImage({ largeLayerMiB: 2, tag: 'dark' })])
    upHost = `${host('up').ip}:5000`
    ref = `${upHost}/${REPO}:${image.tag}`
    darkRef = `${upHost}/${DARK_REPO}:${dark.tag}`
    upstream = await startNetnsRegistry({ cluster, host: host('up'), dir: work.path, addr: upHost, logFile: accessLog, accessLog: true })
    for (const [layout, tag, to] of [[image.layoutDir, image.tag, ref], [dark.layoutDir, dark.tag, darkRef]] as const) await pushFromNetns(host('up'), layout, tag, to)

    // The bundles are made on n0 while the upstream is still there (the connected side of an air gap), for this
    // machine's platform: the index keeps its digest, the other platform's blobs stay behind.
    for (const [file, what] of [[bundle, ref], [darkBundle, darkRef]] as const) {
      const saved = await flotillaIn(host('n0'), ['save', '-o', file, '--registry', `${upHost}=http://${upHost}`,
        '--platform', `linux/${hostArchitecture()}`, '--cache-dir', join(work.path, 'save-cache'), what])
      assert.equal(saved.code, 0, `flotilla save: ${saved.stderr}`)
      assert.match(saved.stdout, /^saved 1 image\(s\), /)
    }

    // The air gap: no upstream from here on. Its namespace stays, so a connection to it is refused at once.
    await upstream.stop()
    await writeFile(accessLog, '')
    assert.notEqual((await host('n1').exec('curl', ['-s', '-o', '/dev/null', '--max-time', '5', `http://${upHost}/v2/`], 10_000)).code, 0, 'the upstream is gone')

    // Each node's containerd runs in the node's namespace: its CRI pulls dial the agent there, then the upstream.
    for (const name of NODE_NAMES) {
      const containerd = await startContainerd({ netns: host(name).ns, logFile: join(work.path, `containerd-${name}.log`) })
      nodes.push({ name, host: host(name), containerd, cri: new CriImageClient({ socket: containerd.socket, callTimeoutMs: 5000 }) })
      await writeHostsToml(containerd.certsDir, upHost, { server: `http://${upHost}`, mirrors: [{ url: 'http://127.0.0.1:5000', dialTimeout: '200ms' }] })
    }
    await Promise.all(nodes.map(async (n) => { await startAgent(n) }))
    await waitFor(async () => {
      const peers = await Promise.all(nodes.map(async (n) => sumMetric(await agentGet(n, '/metrics'), 'flotilla_p2p_peers')))
      return peers.every((p) => p >= 3)
    }, { timeoutMs: 30_000, intervalMs: 250, what: 'a full mesh of four agents' })
  })

  after(async () => {
    for (const n of nodes) n.cri.close()
    await Promise.all(nodes.map(async (n) => await n.proc?.stop('SIGTERM', 10_000)))
    await upstream?.stop()
    for (const n of nodes) await n.containerd.stop()
    await cluster?.destroy()
    if (process.env.FLOTILLA_KEEP_LOGS !== undefined) {
      await cp(work.path, process.env.FLOTILLA_KEEP_LOGS, { recursive: true, filter: (s) => !s.includes('/data-') && !s.includes('/registry/') && !s.includes('/save-cache') })
    }
    await work?.cleanup()
  })

  test('before the load nobody has the image: a pull on n1 fails, and quickly', async (t) => {
    const started = Date.now()
    const err = await node('n1').cri.pullImage(ref, { timeoutMs: REFUSED_WITHIN_MS + 10_000 }).then(() => undefined, (e: unknown) => e as Error)
    const ms = Date.now() - started
    const line = `the pull before the load failed after ${ms} ms: ${err?.message.split('\n')[0] ?? '(it succeeded)'}`
    t.diagnostic(line)
    console.log(`# ${line}`)
    assert.ok(err !== undefined, 'nothing holds the image, yet the pull succeeded')
    assert.ok(ms < REFUSED_WITHIN_MS, `the pull took ${ms} ms to fail`)
    assert.equal(await node('n1').cri.imageStatus(ref), undefined)
  })

  test('load into n0, then n1, n2 and n3 pull the image by tag from the peers with the upstream stopped', async (t) => {
    const m = hostManifest(image)
    const blobs = [m.configDigest, ...m.layers.map((l) => l.digest)]
    const metricsOf = async (n: Node): Promise<string> => await agentGet(n, '/metrics')
    const n0Before = await metricsOf(node('n0'))

    const loadStarted = Date.now()
    const loaded = await flotillaIn(host('n0'), ['load', bundle, '--agent', 'http://127.0.0.1:5000'])
    const loadMs = Date.now() - loadStarted
    assert.equal(loaded.code, 0, `flotilla load: ${loaded.stderr}`)
    assert.match(loaded.stdout, /^loaded 1 image\(s\)/)
    const n0AfterLoad = await metricsOf(node('n0'))

    const pullers = nodes.filter((n) => n.name !== 'n0')
    const pullStarted = Date.now()
    const took = new Map<NodeName, number>()
    const outcomes = await Promise.allSettled(pullers.map(async (n) => {
      await n.cri.pullImage(ref, { timeoutMs: PULL_WITHIN_MS })
      took.set(n.name, Date.now() - pullStarted)
    }))
    const failures = outcomes.flatMap((o, i) => o.status === 'rejected' ? [`${pullers[i]?.name ?? '?'}: ${(o.reason as Error).message}`] : [])

    const after = new Map(await Promise.all(nodes.map(async (n) => [n.name, await metricsOf(n)] as const)))
    const count = (text: string | undefined, kind: string, result: string): number => sumMetric(text ?? '', 'flotilla_requests_total', { kind, result })
    const n0Text = after.get('n0')
    const n0BlobHits = count(n0Text, 'blob', 'hit') - count(n0AfterLoad, 'blob', 'hit')
    const n0Bytes = sumMetric(n0Text ?? '', 'flotilla_served_bytes_total') - sumMetric(n0AfterLoad, 'flotilla_served_bytes_total')
    const report = [
      `bundle ${(await stat(bundle)).size} B; load into n0 ${loadMs} ms: ${loaded.stdout.trim()}`,
      `CRI pulls on n1–n3 at once: ${pullers.map((n) => `${n.name} ${took.has(n.name) ? `${((took.get(n.name) ?? 0) / 1000).toFixed(1)} s` : 'failed'}`).join(', ')}`,
      `n0 served ${n0BlobHits} blob request(s), ${n0Bytes} B after the load (blob hits during the load: ${count(n0AfterLoad, 'blob', 'hit') - count(n0Before, 'blob', 'hit')})`,
      ...nodes.map((n) => {
        const text = after.get(n.name)
        return `${n.name}: blob ${count(text, 'blob', 'peer')} peer / ${count(text, 'blob', 'hit')} hit / ${count(text, 'blob', 'upstream')} upstream / ${count(text, 'blob', 'error')} error; ` +
          `manifest ${count(text, 'manifest', 'peer')} peer / ${count(text, 'manifest', 'hit')} hit / ${count(text, 'manifest', 'stale')} stale / ${count(text, 'manifest', 'error')} error; ` +
          `upstream requests tried ${sumMetric(text ?? '', 'flotilla_upstream_requests_total')}, upstream bytes ${sumMetric(text ?? '', 'flotilla_upstream_bytes_total')}`
      }),
    ]
    for (const line of report) { t.diagnostic(line); console.log(`# ${line}`) }
    assert.deepEqual(failures, [], 'every pull succeeded')

    for (const n of pullers) {
      const ls = await n.containerd.ctr(['images', 'ls'], { timeoutMs: 10_000 })
      assert.equal(ls.code, 0, ls.stderr)
      const row = ls.stdout.split('\n').find((l) => l.split(/\s+/)[0] === ref)
      assert.ok(row !== undefined, `${n.name}: containerd lists ${ref}:\n${ls.stdout}`)
      assert.ok(row.includes(image.indexDigest), `${n.name}: listed at the index digest: ${row}`)
      const check = await n.containerd.ctr(['images', 'check', `name==${ref}`], { timeoutMs: 10_000 })
      assert.match(check.stdout, /complete/, `${n.name}: ${check.stdout}`)
      const text = after.get(n.name)
      // Every blob this node's containerd fetched came from a peer: none from the upstream, none it already held.
      assert.ok(count(text, 'blob', 'peer') >= blobs.length, `${n.name}: ${count(text, 'blob', 'peer')} blob(s) from peers, of ${blobs.length}`)
      assert.equal(count(text, 'blob', 'upstream'), 0, `${n.name}: blobs from the upstream`)
      assert.ok(count(text, 'manifest', 'peer') >= 1, `${n.name}: the tag resolved through a peer`)
      assert.equal(sumMetric(text ?? '', 'flotilla_upstream_bytes_total'), 0, `${n.name}: upstream bytes`)
    }
    // n0, the only holder when the pulls began, handed out at least one copy of every blob.
    assert.ok(n0BlobHits >= blobs.length, `n0 answered ${n0BlobHits} blob request(s) from peers`)
    assert.ok(n0Bytes >= m.layers.reduce((a, l) => a + l.size, 0) + m.configSize, `n0 sent ${n0Bytes} B to peers`)
    assert.equal((await readAccessLog(accessLog)).length, 0, 'the stopped upstream was asked nothing')
  })

  // Regression (found with this test): with the upstream's packets dropped instead of refused, the upstream's
  // connection attempts outlast the 5 s first-byte bound; the late path must then ask the node's images and its
  // peers for the tag (TagService.late) rather than answer 503, or a tag only a peer holds never resolves.
  test('with the upstream unreachable (packets dropped, not refused), a bundle loaded into n0 is pulled on n1', async (t) => {
    const blocked = await host('up').exec('iptables', ['-I', 'INPUT', '-j', 'DROP'], 10_000)
    if (blocked.code !== 0) {
      t.skip(`iptables cannot drop the upstream's packets here: ${blocked.stderr.trim()}`)
      return
    }
    // A fresh agent on n1, so that no upstream circuit opened by the refused connections above helps it.
    const n1 = node('n1')
    await n1.proc?.stop('SIGTERM', 10_000)
    await startAgent(n1)
    await waitFor(async () => sumMetric(await agentGet(n1, '/metrics'), 'flotilla_p2p_peers') >= 3,
      { timeoutMs: 30_000, intervalMs: 250, what: 'n1 back in the mesh' })
    const loaded = await flotillaIn(host('n0'), ['load', darkBundle, '--agent', 'http://127.0.0.1:5000'])
    assert.equal(loaded.code, 0, `flotilla load: ${loaded.stderr}`)
    const started = Date.now()
    const err = await n1.cri.pullImage(darkRef, { timeoutMs: PULL_WITHIN_MS }).then(() => undefined, (e: unknown) => e as Error)
    const line = `with the upstream unreachable, n1's pull of the loaded image ${err === undefined ? 'succeeded' : 'failed'} after ${Date.now() - started} ms${err === undefined ? '' : `: ${err.message.split('\n')[0] ?? ''}`}`
    t.diagnostic(line)
    console.log(`# ${line}`)
    assert.equal(err, undefined)
    const ls = await n1.containerd.ctr(['images', 'ls'], { timeoutMs: 10_000 })
    assert.ok(ls.stdout.split('\n').some((l) => l.split(/\s+/)[0] === darkRef && l.includes(dark.indexDigest)), ls.stdout)
  })
})
