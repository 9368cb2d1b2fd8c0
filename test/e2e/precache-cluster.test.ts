// Issue 11, check 6: four agents in network namespaces, each next to its own containerd (the daemon runs in the
// agent's namespace, so its hosts.toml mirror is the agent at 127.0.0.1:5000), all pre-caching one set at the same
// moment (the file appears once all four are up and peered): containerd → agent → peers → upstream, and the
// upstream (Distribution in a namespace of its own, counted by its access log) serves each blob once.
import assert from 'node:assert/strict'
import { cp, mkdir, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { generateClusterKey } from '../../src/p2p/cluster-key.js'
import type { PrecacheStatus } from '../../src/precache/precache-status.js'
import { startProcess, type ProcessHandle } from '../helpers/child-process.js'
import { startContainerd, writeHostsToml, type Containerd } from '../helpers/containerd.js'
import { CLI_ENTRY, sumMetric } from '../helpers/flotilla-agent.js'
import { createNetnsCluster, type NetnsCluster, type NetnsHost } from '../helpers/netns-cluster.js'
import { pushFromNetns, startNetnsRegistry } from '../helpers/netns-registry.js'
import { blobDigestOf, readAccessLog, type AccessLogEntry } from '../helpers/registry-access-log.js'
import { makeTempDir, type TempDir } from '../helpers/temp-dir.js'
import { buildTestImage, hostManifest, type TestImage } from '../helpers/test-image.js'
import { waitFor } from '../helpers/wait-for.js'

const REPO = 'precache/web'
const NODE_NAMES = ['n0', 'n1', 'n2', 'n3'] as const
const NAMES = ['up', ...NODE_NAMES] as const
type NodeName = typeof NODE_NAMES[number]
/** From the file's appearance to every node holding the image. */
const READY_WITHIN_MS = 90_000

interface Node { name: NodeName, host: NetnsHost, containerd: Containerd, proc?: ProcessHandle }

void describe('pre-cache on four nodes at once (issue 11, check 6)', { timeout: 240_000 }, () => {
  let work: TempDir
  let cluster: NetnsCluster
  let image: TestImage
  let upstream: ProcessHandle | undefined
  let upHost: string
  let accessLog: string
  let keyFile: string
  let precacheFile: string
  let ref: string
  const nodes: Node[] = []
  const host = (name: typeof NAMES[number]): NetnsHost => cluster.host(name)
  const nodeByIp = (ip: string): string => nodes.find((n) => n.host.ip === ip)?.name ?? ip

  async function agentGet (node: Node, path: string): Promise<string> {
    const r = await node.host.exec('curl', ['-sf', `http://127.0.0.1:5000${path}`], 10_000)
    if (r.code !== 0) throw new Error(`${node.name}: GET ${path} failed (${r.code}): ${r.stderr}`)
    return r.stdout
  }

  async function precacheStatus (node: Node): Promise<PrecacheStatus> {
    return JSON.parse(await agentGet(node, '/status/precache')) as PrecacheStatus
  }

  async function startAgent (node: Node): Promise<void> {
    const h = node.host
    const bootstrap = (['n0', 'n1'] as const).map((n) => `/ip4/${host(n).ip}/tcp/5001`)
    const [cmd, args] = cluster.wrap(h, process.execPath, ['--import', 'tsx', CLI_ENTRY, 'serve',
      '--listen', '0.0.0.0:5000', '--peer-address', `${h.ip}:5000`, '--data-dir', join(work.path, `data-${node.name}`),
      '--p2p-listen', `/ip4/${h.ip}/tcp/5001`, ...bootstrap.flatMap((b) => ['--bootstrap', b]),
      '--cluster-key-file', keyFile, '--registry', `${upHost}=http://${upHost}`, '--default-registry', upHost,
      '--containerd-socket', node.containerd.socket, '--containerd-namespace', 'k8s.io', '--containerd-content-dir', node.containerd.contentDir,
      '--precache', precacheFile, '--log-level', process.env.FLOTILLA_TEST_LOG_LEVEL ?? 'info'])
    node.proc = await startProcess(cmd, args, {
      name: `agent-${node.name}`, logFile: join(work.path, `agent-${node.name}.log`), readyTimeoutMs: 60_000, readyIntervalMs: 200,
      readyCheck: async () => (await h.exec('curl', ['-sf', '-o', '/dev/null', 'http://127.0.0.1:5000/healthz'], 5000)).code === 0,
    })
  }

  before(async () => {
    work = await makeTempDir('precache-cluster')
    accessLog = join(work.path, 'registry.log')
    keyFile = join(work.path, 'cluster.key')
    await mkdir(join(work.path, 'sets'))
    precacheFile = join(work.path, 'sets', 'precache.yaml')
    await writeFile(keyFile, generateClusterKey(), { mode: 0o600 })
    ;[cluster, image] = await Promise.all([createNetnsCluster(NAMES), buildTestImage({ largeLayerMiB: 6 })])
    upHost = `${host('up').ip}:5000`
    ref = `${upHost}/${REPO}:${image.tag}`
    upstream = await startNetnsRegistry({ cluster, host: host('up'), dir: work.path, addr: upHost, logFile: accessLog, accessLog: true })
    await pushFromNetns(host('up'), image.layoutDir, image.tag, ref)

    // Each node's containerd runs in the node's namespace: its CRI pulls dial the agent there.
    for (const name of NODE_NAMES) {
      const containerd = await startContainerd({ netns: host(name).ns, logFile: join(work.path, `containerd-${name}.log`) })
      nodes.push({ name, host: host(name), containerd })
      await writeHostsToml(containerd.certsDir, upHost, { server: `http://${upHost}`, mirrors: [{ url: 'http://127.0.0.1:5000', dialTimeout: '200ms' }] })
    }
    await writeFile(accessLog, '') // only what the pre-cache asks for from here on
    await Promise.all(nodes.map(async (n) => { await startAgent(n) }))
    // A full mesh before the file appears, so that all four agree on each digest's owner.
    await waitFor(async () => {
      const peers = await Promise.all(nodes.map(async (n) => sumMetric(await agentGet(n, '/metrics'), 'flotilla_p2p_peers')))
      return peers.every((p) => p >= 3)
    }, { timeoutMs: 30_000, intervalMs: 250, what: 'a full mesh of four agents' })
  })

  after(async () => {
    await Promise.all(nodes.map(async (n) => await n.proc?.stop('SIGTERM', 10_000)))
    await upstream?.stop()
    for (const n of nodes) await n.containerd.stop()
    await cluster?.destroy()
    if (process.env.FLOTILLA_KEEP_LOGS !== undefined) {
      await cp(work.path, process.env.FLOTILLA_KEEP_LOGS, { recursive: true, filter: (s) => !s.includes('/data-') && !s.includes('/registry/') })
    }
    await work?.cleanup()
  })

  test('the set appears on four nodes at once: every containerd holds the image, the upstream served each blob once', async (t) => {
    for (const n of nodes) {
      const s = await precacheStatus(n)
      assert.equal(s.mode, 'containerd', `${n.name}: ${JSON.stringify(s)}`)
      assert.equal(s.sets.length, 0, `${n.name}: no sets before the file exists`)
    }
    const staged = `${precacheFile}.tmp`
    await writeFile(staged, `sets:\n  - name: web\n    images:\n      - ${ref}\n`)
    const started = Date.now()
    await rename(staged, precacheFile)

    const readyAt = new Map<NodeName, number>()
    const last = new Map<NodeName, PrecacheStatus>()
    await waitFor(async () => {
      await Promise.all(nodes.filter((n) => !readyAt.has(n.name)).map(async (n) => {
        const s = await precacheStatus(n)
        last.set(n.name, s)
        if (s.sets[0]?.images[0]?.phase === 'Ready') readyAt.set(n.name, Date.now() - started)
      }))
      return readyAt.size === nodes.length
    }, { timeoutMs: READY_WITHIN_MS, intervalMs: 250, what: 'the image Ready on all four nodes' }).catch((err: unknown) => {
      throw new Error(`${(err as Error).message}; last status: ${JSON.stringify(Object.fromEntries(last))}`)
    })
    const seconds = (Date.now() - started) / 1000

    const m = hostManifest(image)
    for (const n of nodes) {
      const img = (await precacheStatus(n)).sets[0]?.images[0]
      assert.ok(img !== undefined)
      assert.equal(img.ref, ref)
      assert.equal(img.digest, image.indexDigest, `${n.name}: the pre-cached digest`)
      assert.equal(img.error, null, `${n.name}: ${img.error}`)
      assert.equal(img.pinned, true, `${n.name}: pinned`)
      const ls = await n.containerd.ctr(['images', 'ls'], { timeoutMs: 10_000 })
      assert.equal(ls.code, 0, ls.stderr)
      const row = ls.stdout.split('\n').find((l) => l.split(/\s+/)[0] === ref)
      assert.ok(row !== undefined, `${n.name}: containerd lists ${ref}:\n${ls.stdout}`)
      assert.ok(row.includes(image.indexDigest), `${n.name}: ${row}`)
      const check = await n.containerd.ctr(['images', 'check', `name==${ref}`], { timeoutMs: 10_000 })
      assert.match(check.stdout, /complete/, `${n.name}: ${check.stdout}`)
    }

    const log = await readAccessLog(accessLog)
    const blobGets = log.filter((e) => e.method === 'GET' && blobDigestOf(e.path) !== undefined)
    const byDigest = new Map<string, AccessLogEntry[]>()
    for (const e of blobGets) byDigest.set(blobDigestOf(e.path) ?? '', [...(byDigest.get(blobDigestOf(e.path) ?? '') ?? []), e])
    const wanted = new Map([[m.configDigest, m.configSize], ...m.layers.map((l) => [l.digest, l.size] as const)])
    const oneCopy = [...wanted.values()].reduce((a, b) => a + b, 0)
    const served = blobGets.reduce((a, e) => a + e.bytes, 0)
    const others = log.filter((e) => blobDigestOf(e.path) === undefined || e.method !== 'GET')
    const requestsBy = new Map<string, number>()
    for (const e of others) {
      const key = `${nodeByIp(e.client)} ${e.method} ${e.path.replace(image.indexDigest, '<index>').replace(m.digest, '<manifest>')} ${e.status} (${e.userAgent.split(' ')[0] ?? ''})`
      requestsBy.set(key, (requestsBy.get(key) ?? 0) + 1)
    }
    const results = await Promise.all(nodes.map(async (n) => {
      const text = await agentGet(n, '/metrics')
      const by = (result: string): number => sumMetric(text, 'flotilla_requests_total', { kind: 'blob', result })
      return `${n.name} ${by('upstream')} upstream / ${by('peer')} peer / ${by('hit')} hit`
    }))
    const report = [
      `the set Ready on four nodes in ${seconds.toFixed(1)} s (${nodes.map((n) => `${n.name} ${((readyAt.get(n.name) ?? 0) / 1000).toFixed(1)} s`).join(', ')})`,
      `upstream blob bytes ${served} for one copy of ${oneCopy} (config + ${m.layers.length} layers)`,
      ...blobGets.map((e) => `blob GET ${e.path.split('/').pop()?.slice(0, 19) ?? ''} by ${nodeByIp(e.client)} at ${e.time} ${e.status} ${e.bytes} B (${e.userAgent.split(' ')[0] ?? ''})`),
      `blob requests each agent answered, by its result label (an owner's answers to peers while it fetches count as upstream): ${results.join('; ')}`,
      `other upstream requests: ${[...requestsBy].map(([k, v]) => `${v}× ${k}`).join('; ')}`,
    ]
    for (const line of report) { t.diagnostic(line); console.log(`# ${line}`) }

    for (const [digest, size] of wanted) {
      const gets = byDigest.get(digest) ?? []
      assert.equal(gets.length, 1, `${digest} GET from upstream ${gets.length} times: ${gets.map((e) => `${nodeByIp(e.client)} ${e.time} ${e.status}`).join(', ')}`)
      assert.equal(gets[0]?.status, 200)
      assert.equal(gets[0]?.bytes, size)
    }
    assert.deepEqual([...byDigest.keys()].filter((d) => !wanted.has(d)), [], 'no other blob (the other platform\'s config) was fetched')
    assert.equal(served, oneCopy)
    assert.equal(log.filter((e) => e.userAgent.startsWith('containerd')).length, 0, 'no containerd went around its agent to the upstream')
  })
})
