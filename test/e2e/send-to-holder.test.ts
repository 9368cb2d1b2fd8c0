// p2p.sendToHolders with real parts (issue 16, pod start): n0's agent holds an image and the upstream is
// stopped; n1's agent is wired to n1's containerd, so by default it answers containerd's blob GETs with a 307
// to n0. `ctr images pull` on n1 follows them: every byte goes n0 → containerd once, n1's agent keeps nothing
// and relays nothing, and afterwards serves the blobs from containerd's store (the node's one copy).
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { readdir, readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { generateClusterKey } from '../../src/p2p/cluster-key.js'
import { rendezvousOwner } from '../../src/p2p/rendezvous.js'
import type { ProcessHandle } from '../helpers/child-process.js'
import { startContainerd, writeHostsToml, type Containerd } from '../helpers/containerd.js'
import { sumMetric } from '../helpers/flotilla-agent.js'
import { startNetnsAgent, type NetnsAgent } from '../helpers/netns-agent.js'
import { createNetnsCluster, type NetnsCluster, type NetnsHost } from '../helpers/netns-cluster.js'
import { pushFromNetns, startNetnsRegistry } from '../helpers/netns-registry.js'
import { readAccessLog } from '../helpers/registry-access-log.js'
import { makeTempDir, type TempDir } from '../helpers/temp-dir.js'
import { buildTestImage, hostManifest, OCI_INDEX, OCI_MANIFEST, type TestImage } from '../helpers/test-image.js'
import { waitFor } from '../helpers/wait-for.js'

const REPO = 'send/holder'
const NODES = ['up', 'n0', 'n1'] as const
/** What containerd 1.6 sends when it resolves a tag. */
const CONTAINERD_ACCEPT = `application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json, ${OCI_MANIFEST}, ${OCI_INDEX}, */*`

void describe('a node agent wired to containerd sends its blob GETs to the peer that holds them (p2p.sendToHolders)', { timeout: 240_000 }, () => {
  let work: TempDir
  let cluster: NetnsCluster
  let image: TestImage
  let containerd: Containerd
  let upstream: ProcessHandle | undefined
  let upHost: string
  let keyFile: string
  let ref: string
  const agents: NetnsAgent[] = []
  const host = (name: typeof NODES[number]): NetnsHost => cluster.host(name)

  async function startAgent (name: 'n0' | 'n1', extra: readonly string[] = []): Promise<NetnsAgent> {
    const agent = await startNetnsAgent({
      cluster, host: host(name), name: `agent-${name}`, dataDir: join(work.path, `data-${name}`), logFile: join(work.path, `agent-${name}.log`),
      keyFile, upstream: upHost, bootstrap: [host('n0')], extra,
    })
    agents.push(agent)
    return agent
  }

  before(async () => {
    work = await makeTempDir('send-to-holder')
    keyFile = join(work.path, 'cluster.key')
    await writeFile(keyFile, generateClusterKey(), { mode: 0o600 })
    ;[cluster, image] = await Promise.all([createNetnsCluster(NODES), buildTestImage({ largeLayerMiB: 12 })])
    upHost = `${host('up').ip}:5000`
    ref = `${upHost}/${REPO}:${image.tag}`
    upstream = await startNetnsRegistry({ cluster, host: host('up'), dir: work.path, addr: upHost })
    await pushFromNetns(host('up'), image.layoutDir, image.tag, ref)
    containerd = await startContainerd({ netns: host('n1').ns, logFile: join(work.path, 'containerd-n1.log') })
  })

  after(async () => {
    for (const a of agents) await a.proc.stop('SIGTERM', 10_000)
    await upstream?.stop()
    await containerd?.stop()
    await cluster?.destroy()
    await work?.cleanup()
  })

  test('ctr pull on n1 with the upstream stopped: every blob comes from n0 directly; n1 keeps none and serves them from containerd after', async (t) => {
    const m = hostManifest(image)
    const blobs = [{ digest: m.configDigest, size: m.configSize }, ...m.layers]
    // n0 gets the image through its API (the tag with containerd's Accept, manifest, blobs) and keeps it; then
    // the upstream goes.
    const n0 = await startAgent('n0')
    for (const path of [`manifests/${image.tag}`, `manifests/${m.digest}`, ...blobs.map((b) => `blobs/${b.digest}`)]) {
      const r = await n0.host.exec('curl', ['-sf', '-o', '/dev/null', '-H', `Accept: ${CONTAINERD_ACCEPT}`, `http://127.0.0.1:5000/v2/${REPO}/${path}`], 60_000)
      assert.equal(r.code, 0, `n0 GET ${path}: ${r.stderr}`)
    }
    await waitFor(async () => {
      const held = await readdir(join(n0.dataDir, 'blobs', 'sha256')).catch(() => [] as string[])
      return blobs.every((b) => held.includes(b.digest.slice(7)))
    }, { timeoutMs: 30_000, intervalMs: 100, what: "every blob in n0's store" })
    await upstream?.stop()
    upstream = undefined

    // n1's agent is wired to its containerd: p2p.sendToHolders is auto, so on.
    const n1 = await startAgent('n1', ['--containerd-socket', containerd.socket, '--containerd-namespace', containerd.namespace])
    await waitFor(async () => await n0.metric('flotilla_p2p_peers') >= 1 && await n1.metric('flotilla_p2p_peers') >= 1,
      { timeoutMs: 30_000, intervalMs: 200, what: 'n0 and n1 to see each other' })
    const n0Before = await n0.metric('flotilla_served_bytes_total')
    await writeHostsToml(containerd.certsDir, upHost, { server: `http://${upHost}`, mirrors: [{ url: 'http://127.0.0.1:5000', dialTimeout: '200ms' }] })
    const started = Date.now()
    const pulled = await n1.host.exec('ctr', ['--address', containerd.socket, '-n', containerd.namespace, 'images', 'pull', '--snapshotter', containerd.snapshotter,
      '--hosts-dir', containerd.certsDir, '--plain-http', ref], 120_000)
    const ms = Date.now() - started
    const n1Text = await n1.metrics()
    const n0Text = await n0.metrics()
    const sent = sumMetric(n1Text, 'flotilla_p2p_sent_to_holder_total')
    const n0Served = sumMetric(n0Text, 'flotilla_served_bytes_total') - n0Before
    const blobBytes = blobs.reduce((a, b) => a + b.size, 0)
    const line = `ctr pull on n1 ${pulled.code === 0 ? 'succeeded' : 'failed'} in ${ms} ms; n1 sent ${sent} of ${blobs.length} blob GETs to n0; ` +
      `n0 served ${n0Served} B (blobs ${blobBytes} B); n1 served ${sumMetric(n1Text, 'flotilla_served_bytes_total')} B`
    t.diagnostic(line)
    console.log(`# ${line}`)
    assert.equal(pulled.code, 0, pulled.stderr)
    const check = await containerd.ctr(['images', 'check', `name==${ref}`], { timeoutMs: 10_000 })
    assert.match(check.stdout, /complete/, check.stdout)

    assert.equal(sent, blobs.length, 'every blob GET was sent to n0')
    assert.ok(n0Served >= blobBytes, `n0 sent the blobs: ${n0Served} B`)
    // What n1 served itself is the manifests: no blob byte went through it.
    assert.ok(sumMetric(n1Text, 'flotilla_served_bytes_total') < blobBytes / 10, 'n1 relayed no blob')
    const kept = await readdir(join(n1.dataDir, 'blobs', 'sha256')).catch(() => [] as string[])
    assert.deepEqual(blobs.filter((b) => kept.includes(b.digest.slice(7))), [], "n1's agent kept no copy")
    for (const b of blobs) assert.equal((await stat(containerd.blobPath(b.digest))).size, b.size, `containerd holds ${b.digest}`)

    // containerd's copy is the node's: n1's agent serves it from there (only-if-cached: nothing else may answer).
    for (const b of blobs) {
      const out = join(work.path, `from-n1-${b.digest.slice(7, 19)}`)
      const r = await n1.host.exec('curl', ['-sf', '-H', 'Cache-Control: only-if-cached', '-o', out, `http://127.0.0.1:5000/v2/${REPO}/blobs/${b.digest}`], 30_000)
      assert.equal(r.code, 0, `n1 serves ${b.digest} from containerd: ${r.stderr}`)
      assert.equal(`sha256:${createHash('sha256').update(await readFile(out)).digest('hex')}`, b.digest)
    }
    assert.equal(await n1.metric('flotilla_p2p_sent_to_holder_total'), blobs.length, 'held here now: nothing more was sent away')
  })

  test('an image nobody holds yet, upstream back: containerd on n1 is sent to the owner of each blob n0 owns, which fetches it once', async (t) => {
    const [n0, n1] = agents
    assert.ok(n0 !== undefined && n1 !== undefined, 'the first test started both agents')
    const accessLog = join(work.path, 'registry-2.log')
    upstream = await startNetnsRegistry({ cluster, host: host('up'), dir: work.path, addr: upHost, logFile: accessLog, accessLog: true })
    const idOf = async (asker: NetnsAgent): Promise<string> => {
      const r = await asker.host.exec('curl', ['-sf', 'http://127.0.0.1:5000/status.json'], 10_000)
      const id = (JSON.parse(r.stdout) as { peers?: Array<{ id: string }> }).peers?.[0]?.id
      assert.ok(id !== undefined, r.stdout)
      return id
    }
    const [id0, id1] = [await idOf(n1), await idOf(n0)]
    // An image whose config or large layer n0 owns (the busybox layer is in n1's containerd already).
    let image2: TestImage | undefined
    for (let mib = 3; mib <= 16 && image2 === undefined; mib++) {
      const candidate = await buildTestImage({ largeLayerMiB: mib, tag: `new${mib}` })
      const m = hostManifest(candidate)
      if ([m.configDigest, m.layers[1]?.digest ?? ''].some((d) => rendezvousOwner(d, [id0, id1]) === id0)) image2 = candidate
    }
    assert.ok(image2 !== undefined, 'an image with a blob n0 owns')
    const ref2 = `${upHost}/${REPO}:${image2.tag}`
    await pushFromNetns(host('up'), image2.layoutDir, image2.tag, ref2)
    await writeFile(accessLog, '')
    const m2 = hostManifest(image2)
    const fresh = [m2.configDigest, m2.layers[1]?.digest ?? '']
    const ownedByN0 = fresh.filter((d) => rendezvousOwner(d, [id0, id1]) === id0)
    const sentBefore = await n1.metric('flotilla_p2p_sent_to_holder_total')

    const pulled = await n1.host.exec('ctr', ['--address', containerd.socket, '-n', containerd.namespace, 'images', 'pull', '--snapshotter', containerd.snapshotter,
      '--hosts-dir', containerd.certsDir, '--plain-http', ref2], 120_000)
    const sent = await n1.metric('flotilla_p2p_sent_to_holder_total') - sentBefore
    const blobGets = (await readAccessLog(accessLog)).filter((e) => e.method === 'GET' && e.path.includes('/blobs/'))
    const line = `ctr pull of a new image on n1 ${pulled.code === 0 ? 'succeeded' : 'failed'}; n0 owns ${ownedByN0.length} of its ${fresh.length} new blobs; ` +
      `n1 sent ${sent} blob GET(s) away; upstream blob GETs: ${blobGets.map((e) => `${e.path.split('/').pop()?.slice(0, 19) ?? ''} by ${e.client === host('n0').ip ? 'n0' : e.client === host('n1').ip ? 'n1' : e.client} ${e.status}`).join(', ')}`
    t.diagnostic(line)
    console.log(`# ${line}`)
    assert.equal(pulled.code, 0, pulled.stderr)
    assert.equal(sent, ownedByN0.length, 'each blob n0 owns was sent to n0')
    for (const d of fresh) {
      const gets = blobGets.filter((e) => e.path.endsWith(d))
      const by = rendezvousOwner(d, [id0, id1]) === id0 ? host('n0').ip : host('n1').ip
      assert.deepEqual(gets.map((e) => [e.client, e.status]), [[by, 200]], `${d}: one upstream GET, by its owner`)
    }
    const kept = await readdir(join(n1.dataDir, 'blobs', 'sha256')).catch(() => [] as string[])
    for (const d of ownedByN0) assert.ok(!kept.includes(d.slice(7)), `n1 kept no copy of ${d}, which n0 sent containerd`)
  })
})
