// Where an agent's CPU goes when it pulls a blob through from an upstream capped by tc (the P2P bench's
// 100 Mbit/s rollout, one node): the agent's CPU seconds for the pull next to curl's straight from the upstream,
// and how many reads the agent's upstream socket took (its chunk sizes). With FLOTILLA_AGENT_NODE_ARGS="--cpu-prof
// --cpu-prof-dir=DIR" the agent leaves a CPU profile. BENCHMARKS.md says what it showed.
//
//   npm run build && npx tsx bench/profile-capped.ts [--rate 100mbit] [--mib 64] [--runs 2]   (needs root, docker-registry, skopeo, umoci, curl, tc)
import { readdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { generateClusterKey } from '../src/p2p/cluster-key.js'
import { runCommand } from '../test/helpers/run-command.js'
import { buildTestImage, hostManifest } from '../test/helpers/test-image.js'
import { assertBuilt, startDistAgent } from './lib-dist-agent.js'
import { withNetnsUpstream } from './lib-netns-upstream.js'
import { cpuOf } from './lib-rss.js'

const { values } = parseArgs({ options: { rate: { type: 'string', default: '100mbit' }, mib: { type: 'string', default: '64' }, runs: { type: 'string', default: '2' }, p2p: { type: 'boolean', default: false } } })
await assertBuilt()
await withNetnsUpstream('profile-capped', 'bench/capped', async (workDir) => [await buildTestImage({ workDir, largeLayerMiB: Number(values.mib) })], async ({ workDir, cluster, up, node: n1, upAddr, images: [image] }) => {
  if (image === undefined) throw new Error('unreachable')
  await cluster.shape(up, values.rate ?? '100mbit')
  const layer = hostManifest(image).layers.reduce((a, b) => (b.size > a.size ? b : a))
  const keyFile = join(workDir, 'cluster.key')
  await writeFile(keyFile, generateClusterKey(), { mode: 0o600 })
  for (let i = 0; i < Number(values.runs); i++) {
    const curl = await curlTimed(n1.ns, `http://${upAddr}/v2/bench/capped/blobs/${layer.digest}`)
    const agent = await startDistAgent({
      name: `agent-${i}`, netns: n1.ns, listen: '0.0.0.0:5000', dataDir: join(workDir, `data-${i}`), logFile: join(workDir, `agent-${i}.log`),
      args: ['--registry', `${upAddr}=http://${upAddr}`, '--default-registry', upAddr,
        ...(values.p2p === true ? ['--p2p-listen', `/ip4/${n1.ip}/tcp/5001`, '--peer-address', `${n1.ip}:5000`, '--cluster-key-file', keyFile] : [])],
    })
    try {
      const before = await cpuOf(agent.process.pid)
      const threadsBefore = await threadCpu(agent.process.pid)
      const through = await curlTimed(n1.ns, `${agent.url}/v2/bench/capped/blobs/${layer.digest}`)
      const cpu = await cpuOf(agent.process.pid) - before
      const threadsAfter = await threadCpu(agent.process.pid)
      const perThread = [...threadsAfter].map(([tid, t]) => {
        const b = threadsBefore.get(tid) ?? { name: t.name, user: 0, system: 0 }
        return { name: t.name, user: t.user - b.user, system: t.system - b.system }
      }).filter((t) => t.user + t.system > 0.005).sort((a, b) => (b.user + b.system) - (a.user + a.system))
      console.log(`  threads (user + system CPU s): ${perThread.map((t) => `${t.name} ${t.user.toFixed(2)} + ${t.system.toFixed(2)}`).join(', ')}`)
      console.log(`run ${i + 1}: ${layer.size} B at ${values.rate}: direct ${curl.seconds.toFixed(2)} s (curl ${curl.cpu.toFixed(2)} CPU s); ` +
        `through the agent ${through.seconds.toFixed(2)} s, agent ${cpu.toFixed(2)} CPU s (${(cpu / (layer.size / 1e9)).toFixed(2)} CPU s per GB), curl ${through.cpu.toFixed(2)} CPU s`)
    } finally {
      await agent.stop()
    }
  }
})

/** CPU seconds (user, system) of each thread of a process, by thread id, with its name. */
async function threadCpu (pid: number): Promise<Map<string, { name: string, user: number, system: number }>> {
  const out = new Map<string, { name: string, user: number, system: number }>()
  for (const tid of await readdir(`/proc/${pid}/task`)) {
    const stat = await readFile(`/proc/${pid}/task/${tid}/stat`, 'utf8').catch(() => undefined)
    if (stat === undefined) continue
    const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'))
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    // utime and stime are fields 14 and 15 of stat, in clock ticks (100 per second on Linux).
    out.set(tid, { name, user: Number(fields[11]) / 100, system: Number(fields[12]) / 100 })
  }
  return out
}

/** curl's wall time and its own CPU (user + system, from -w is not available: from `time`-like rusage of the child). */
async function curlTimed (ns: string, url: string): Promise<{ seconds: number, cpu: number }> {
  const r = await runCommand('bash', ['-c', `TIMEFORMAT='%R %U %S'; time ip netns exec ${ns} curl -sf -o /dev/null ${url}`], { timeoutMs: 300_000 })
  if (r.code !== 0) throw new Error(`curl ${url}: ${r.stderr}`)
  const [real, user, sys] = r.stderr.trim().split('\n').pop()?.split(' ').map(Number) ?? []
  return { seconds: real ?? NaN, cpu: (user ?? NaN) + (sys ?? NaN) }
}
