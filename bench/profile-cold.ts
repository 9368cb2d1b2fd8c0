// Where the time of a cold pull-through goes: one 200 MB blob pulled through a fresh agent from a Distribution on
// loopback, next to a direct GET, with the agent's peak RSS and memory figures after the pull. Variants compare
// agent builds or Node flags side by side, interleaved: VARIANTS="name:/path/to/node-or-wrapper,..." (an empty
// path is this checkout's dist/ with this node). A wrapper that runs `exec node --cpu-prof --cpu-prof-dir=DIR "$@"`
// leaves a CPU profile per agent (NODE_OPTIONS refuses --cpu-prof); one that replaces its first argument runs
// another checkout's dist/cli/main.js. BENCHMARKS.md ("Where the time goes") says what these showed.
//
//   npm run build && FLOTILLA_AGENT_DIST=1 RUNS=6 npx tsx bench/profile-cold.ts      (needs docker-registry, curl)
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Agent } from 'undici'
import { startDistribution } from '../test/helpers/distribution.js'
import { startFlotilla, sumMetric } from '../test/helpers/flotilla-agent.js'
import { makeTempDir } from '../test/helpers/temp-dir.js'
import { curlDownloader, median } from './blob-download.js'
import { buildBenchImage, writeSeededBlob } from './blob-fixture.js'
import { pushBenchImage } from './registry-push.js'

const runs = Number(process.env.RUNS ?? 3)
const variants = (process.env.VARIANTS ?? 'this:').split(',').map((v) => v.split(':') as [string, string])
const MIB = 1 << 20
const tmp = await makeTempDir('profile-cold')
const registry = await startDistribution()
const dispatcher = new Agent()
try {
  const blob = await writeSeededBlob(join(tmp.path, 'blob.bin'), Number(process.env.BYTES ?? 200_000_000), 'flotilla-bench')
  const image = buildBenchImage(blob, 'bench/blob', 'v1')
  await pushBenchImage(registry.url, image, { dispatcher, signal: AbortSignal.timeout(60_000) })
  const download = curlDownloader()
  const path = `/v2/bench/blob/blobs/${blob.digest}`
  const times = new Map<string, number[]>()
  for (let i = 0; i < runs; i++) {
    for (const [name, node] of i % 2 === 0 ? variants : [...variants].reverse()) {
      const direct = await download(registry.url + path, AbortSignal.timeout(60_000))
      // Read by flotillaCommand when the agent starts.
      if (node === '') delete process.env.FLOTILLA_AGENT_NODE
      else process.env.FLOTILLA_AGENT_NODE = node
      const agent = await startFlotilla({
        logLevel: 'warn',
        configYaml: `registries:\n  up.example: { endpoint: "${registry.url}" }\ndefaultRegistry: up.example\n`,
      })
      try {
        const cold = await download(agent.url + path, AbortSignal.timeout(60_000))
        if (cold.status !== 200 || cold.bytes !== blob.size) throw new Error(`${name}: status ${cold.status}, ${cold.bytes} bytes`)
        times.set(name, [...(times.get(name) ?? []), cold.ms])
        const status = await readFile(`/proc/${agent.process.pid}/status`, 'utf8')
        const kib = (field: string): number => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1] ?? NaN)
        const m = await agent.metricsText()
        const mib = (metric: string): string => (sumMetric(m, `flotilla_nodejs_${metric}`) / MIB).toFixed(0)
        console.log(`${name}: direct ${direct.ms.toFixed(0)} ms, cold through the agent ${cold.ms.toFixed(0)} ms; agent peak RSS ${(kib('VmHWM') / 1024).toFixed(0)} MiB, ` +
          `now ${(kib('VmRSS') / 1024).toFixed(0)} MiB (heap ${mib('heap_size_total_bytes')}, external ${mib('external_memory_bytes')} MiB)`)
      } finally {
        await agent.stop()
      }
    }
  }
  for (const [name, t] of times) console.log(`${name}: median ${median(t).toFixed(0)} ms; runs ${t.map((x) => x.toFixed(0)).join(', ')}`)
} finally {
  await registry.stop()
  await dispatcher.close()
  await tmp.cleanup()
}
