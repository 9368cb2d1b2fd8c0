// Issue 10, one copy with containerd, with real parts: containerd's content dir and agent A's data dir on one
// filesystem; `ctr images pull` of a ~100 MB image through A; `du` counts the layers once; a peer agent in
// another network namespace fetches every layer from A with the upstream stopped, and again (fresh) after
// `ctr content rm` of the layers (what discard_unpacked_layers does).
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { readFile, readdir, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { generateClusterKey } from '../../src/p2p/cluster-key.js'
import type { ProcessHandle } from '../helpers/child-process.js'
import { startContainerd, writeHostsToml, type Containerd } from '../helpers/containerd.js'
import { startNetnsAgent, type NetnsAgent } from '../helpers/netns-agent.js'
import { createNetnsCluster, type NetnsCluster, type NetnsHost } from '../helpers/netns-cluster.js'
import { pushFromNetns, startNetnsRegistry } from '../helpers/netns-registry.js'
import { runCommandChecked } from '../helpers/run-command.js'
import { makeTempDir, type TempDir } from '../helpers/temp-dir.js'
import { buildTestImage, hostManifest, type TestImage } from '../helpers/test-image.js'
import { waitFor } from '../helpers/wait-for.js'

const REPO = 'one/copy'
const NODES = ['up', 'a', 'b'] as const
/** What the agent may add on disk beyond containerd's copy, as a share of the image's bytes. */
const MAX_EXTRA_SHARE = 0.05

/** `du -sk A B`: KiB allocated under each; a file hard-linked from both is counted once, under A. */
async function du (first: string, second: string): Promise<[number, number]> {
  const out = (await runCommandChecked('du', ['-sk', first, second], { timeoutMs: 30_000 })).stdout.trim().split('\n')
  const kib = out.map((line) => Number(line.split('\t')[0]))
  assert.equal(kib.length, 2, out.join('\n'))
  return [kib[0] ?? NaN, kib[1] ?? NaN]
}

void describe('one copy of each layer per node with containerd (issue 10)', { timeout: 300_000 }, () => {
  let work: TempDir
  let cluster: NetnsCluster
  let image: TestImage
  let node: Containerd
  let upstream: ProcessHandle | undefined
  let upHost: string
  let keyFile: string
  let ref: string
  const agents: NetnsAgent[] = []
  const host = (name: typeof NODES[number]): NetnsHost => cluster.host(name)

  async function startAgent (name: 'a' | 'b', dataDir: string, extra: readonly string[] = []): Promise<NetnsAgent> {
    const agent = await startNetnsAgent({
      cluster, host: host(name), name: `agent-${name}`, dataDir, logFile: join(work.path, `agent-${name}.log`),
      keyFile, upstream: upHost, bootstrap: [host('a'), host('b')], extra,
    })
    agents.push(agent)
    return agent
  }

  /** Every layer of the node's platform through agent `via` (its own store is empty), verified. */
  async function fetchLayers (via: NetnsAgent): Promise<void> {
    for (const layer of hostManifest(image).layers) {
      const out = join(work.path, `fetched-${layer.digest.slice(7, 19)}`)
      const r = await via.host.exec('curl', ['-sf', '-o', out, `http://127.0.0.1:5000/v2/${REPO}/blobs/${layer.digest}`], 120_000)
      assert.equal(r.code, 0, `peer fetch of ${layer.digest} failed: ${r.stderr}`)
      const bytes = await readFile(out)
      assert.equal(`sha256:${createHash('sha256').update(bytes).digest('hex')}`, layer.digest)
    }
  }

  before(async () => {
    work = await makeTempDir('one-copy')
    keyFile = join(work.path, 'cluster.key')
    await writeFile(keyFile, generateClusterKey(), { mode: 0o600 })
    ;[cluster, image, node] = await Promise.all([createNetnsCluster(NODES), buildTestImage({ largeLayerMiB: 96 }), startContainerd()])
    upHost = `${host('up').ip}:5000`
    upstream = await startNetnsRegistry({ cluster, host: host('up'), dir: work.path, addr: upHost })
    await pushFromNetns(host('up'), image.layoutDir, image.tag, `${upHost}/${REPO}:${image.tag}`)
    ref = `${upHost}/${REPO}:${image.tag}`
  })

  after(async () => {
    for (const a of agents) await a.proc.stop('SIGTERM', 10_000)
    await upstream?.stop()
    await node?.stop()
    await cluster?.destroy()
    await work?.cleanup()
  })

  test('ctr pull through the agent: the layers are on disk once, served to a peer before and after containerd discards them', async (t) => {
    const dataA = join(work.path, 'data-a')
    const a = await startAgent('a', dataA, ['--containerd-socket', node.socket, '--containerd-namespace', 'k8s.io', '--containerd-content-dir', node.contentDir])
    // ctr does the HTTP itself: run it in A's namespace, where the agent is 127.0.0.1:5000 (the daemon is reached by its unix socket).
    await writeHostsToml(node.certsDir, upHost, { server: `http://${upHost}`, mirrors: [{ url: 'http://127.0.0.1:5000', dialTimeout: '200ms' }] })
    const pulled = await a.host.exec('ctr', ['--address', node.socket, '-n', 'k8s.io', 'images', 'pull', '--snapshotter', node.snapshotter,
      '--hosts-dir', node.certsDir, '--plain-http', ref], 180_000)
    assert.equal(pulled.code, 0, pulled.stderr)

    const m = hostManifest(image)
    const imageBytes = m.configSize + m.size + m.layers.reduce((n, l) => n + l.size, 0)
    assert.equal((await stat(node.contentDir)).dev, (await stat(dataA)).dev, 'one filesystem')
    // The client has its last byte once the bytes verified; the store's fsync and rename may still be under way.
    await waitFor(async () => {
      const held = await readdir(join(dataA, 'blobs', 'sha256'))
      return m.layers.every((l) => held.includes(l.digest.slice(7)))
    }, { timeoutMs: 10_000, what: 'the agent keeping every layer it served' })
    let figures: [number, number] = [0, 0]
    await waitFor(async () => {
      figures = await du(node.contentDir, dataA)
      return figures[1] * 1024 < MAX_EXTRA_SHARE * imageBytes
    }, { timeoutMs: 30_000, intervalMs: 200, what: 'the agent to share its layers with containerd' }).catch(() => {})
    const report = `image ${(imageBytes / 2 ** 20).toFixed(1)} MiB; du -sk content dir ${figures[0]} KiB, data dir ${figures[1]} KiB ` +
      `(${(100 * figures[1] * 1024 / imageBytes).toFixed(2)} % of the image)`
    t.diagnostic(report)
    console.log(`# ${report}`)
    assert.ok(figures[1] * 1024 < MAX_EXTRA_SHARE * imageBytes, report)
    for (const l of m.layers) assert.equal((await stat(join(dataA, 'blobs', 'sha256', l.digest.slice(7)))).nlink, 2, `${l.digest} is a hard link`)

    // The upstream goes away: whatever the peer gets comes from A.
    await upstream?.stop()
    upstream = undefined
    const b = await startAgent('b', join(work.path, 'data-b1'))
    await waitFor(async () => await a.metric('flotilla_p2p_peers') >= 1 && await b.metric('flotilla_p2p_peers') >= 1, { timeoutMs: 30_000, what: 'A and B to see each other' })
    await fetchLayers(b)
    await b.proc.stop('SIGTERM', 10_000)

    for (const l of m.layers) {
      const rm = await node.ctr(['content', 'rm', l.digest], { timeoutMs: 10_000 })
      assert.equal(rm.code, 0, rm.stderr)
    }
    // The file goes with containerd's garbage collection, which the removal schedules.
    await waitFor(async () => (await Promise.all(m.layers.map(async (l) => await stat(node.blobPath(l.digest)).then(() => true, () => false)))).every((isThere) => !isThere),
      { timeoutMs: 30_000, what: 'containerd to delete the layer files' })
    const afterRm = await du(node.contentDir, dataA)
    const report2 = `after ctr content rm of the layers: du -sk content dir ${afterRm[0]} KiB, data dir ${afterRm[1]} KiB`
    t.diagnostic(report2)
    console.log(`# ${report2}`)
    assert.ok(afterRm[1] * 1024 >= m.layers.reduce((n, l) => n + l.size, 0), 'the agent holds the layers now')

    const fresh = await startAgent('b', join(work.path, 'data-b2'))
    await waitFor(async () => await fresh.metric('flotilla_p2p_peers') >= 1, { timeoutMs: 30_000, what: 'a fresh B to see A' })
    await fetchLayers(fresh)
  })
})
