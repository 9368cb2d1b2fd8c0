// What N idle agents in a P2P mesh cost in CPU while nothing is pulled (libp2p's own traffic: DHT, identify,
// pings, re-announcements), next to N agents without P2P. The P2P bench's "agents' CPU during pull" includes it.
//
//   npm run build && npx tsx bench/p2p-idle-cpu.ts [--n 8] [--seconds 10]   (needs root, curl)
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { generateClusterKey } from '../src/p2p/cluster-key.js'
import { createNetnsCluster } from '../test/helpers/netns-cluster.js'
import { makeTempDir } from '../test/helpers/temp-dir.js'
import { waitFor } from '../test/helpers/wait-for.js'
import { assertBuilt, startDistAgent, type DistAgent } from './lib-dist-agent.js'
import { cpuOf } from './lib-rss.js'

const { values } = parseArgs({ options: { n: { type: 'string', default: '8' }, seconds: { type: 'string', default: '10' } } })
const n = Number(values.n)
const seconds = Number(values.seconds)
await assertBuilt()
const work = await makeTempDir('p2p-idle-cpu')
const cluster = await createNetnsCluster(Array.from({ length: n }, (_, i) => `n${i}`))
const keyFile = join(work.path, 'cluster.key')
await writeFile(keyFile, generateClusterKey(), { mode: 0o600 })
try {
  for (const isP2p of [false, true]) {
    const agents: DistAgent[] = []
    try {
      for (const [i, h] of cluster.hosts.entries()) {
        agents.push(await startDistAgent({
          name: `agent-${i}`, netns: h.ns, listen: '0.0.0.0:5000', dataDir: join(work.path, `${isP2p ? 'p2p' : 'alone'}-${i}`),
          args: ['--registry', 'up.example=http://127.0.0.1:9', '--default-registry', 'up.example',
            ...(isP2p ? ['--p2p-listen', `/ip4/${h.ip}/tcp/5001`, '--peer-address', `${h.ip}:5000`, '--cluster-key-file', keyFile, '--bootstrap', `/ip4/${cluster.hosts[0]?.ip ?? ''}/tcp/5001`] : [])],
        }))
      }
      if (isP2p) await waitFor(async () => (await Promise.all(agents.map(async (a) => await a.metric('flotilla_p2p_peers')))).every((p) => p >= n - 1), { timeoutMs: 60_000, intervalMs: 500, what: 'a full mesh' })
      // Past the joining, then measured.
      await new Promise((resolve) => setTimeout(resolve, 5000))
      const before = await Promise.all(agents.map(async (a) => await cpuOf(a.process.pid)))
      await new Promise((resolve) => setTimeout(resolve, seconds * 1000))
      const after = await Promise.all(agents.map(async (a) => await cpuOf(a.process.pid)))
      const used = after.reduce((t, c, i) => t + c - (before[i] ?? 0), 0)
      console.log(`${n} agents ${isP2p ? 'with P2P (full mesh)' : 'without P2P'}: ${used.toFixed(2)} CPU s in ${seconds} s idle (${(100 * used / seconds / n).toFixed(1)} % of a core per agent)`)
    } finally {
      await Promise.all(agents.map(async (a) => { await a.stop() }))
    }
  }
} finally {
  await cluster.destroy()
  await work.cleanup()
}
