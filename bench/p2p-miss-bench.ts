// Miss latency: how long an agent takes to answer 404 for a digest no peer holds and the upstream lacks.
// Side by side in one run: Distribution asked directly, one flotilla without P2P, and clusters of N agents
// (separate processes on 127.0.0.1, joined with a cluster key) where a miss costs a hop to the digest's owner.
//
//   npx tsx bench/p2p-miss-bench.ts [--quick] [--n 4,8]   (needs docker-registry; run `npm run build` first)
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { generateClusterKey } from '../src/p2p/cluster-key.js'
import { startDistribution } from '../test/helpers/distribution.js'
import { freePort } from '../test/helpers/free-port.js'
import { makeTempDir } from '../test/helpers/temp-dir.js'
import { waitFor } from '../test/helpers/wait-for.js'
import { assertBuilt, startDistAgent, type DistAgent } from './lib-dist-agent.js'
import { describeMachine, invocation, markdownTable, renderReport, writeResult } from './lib-report.js'
import { runBounded, type Log, type Teardown } from './lib-teardown.js'

const RUN_DEADLINE_MS = 5 * 60_000
const MESH_TIMEOUT_MS = 30_000
const BOOTSTRAP_PEERS = 3
const TARGET_P99_MS = 20

const log: Log = (message) => { console.error(`[p2p-miss] ${message}`) }

interface Stats { readonly p50: number, readonly p90: number, readonly p99: number, readonly max: number }
interface Row { readonly label: string, readonly stats: Stats, readonly meshMs?: number }

function randomDigest (): string {
  return `sha256:${Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString('hex')}`
}

function stats (latencies: number[]): Stats {
  const sorted = [...latencies].sort((a, b) => a - b)
  const q = (p: number): number => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? NaN
  return { p50: q(0.5), p90: q(0.9), p99: q(0.99), max: sorted.at(-1) ?? NaN }
}

/** Sequential GETs of random digests (each a miss everywhere) after `warmup` unrecorded ones; fails on anything but 404. */
async function measureMisses (base: string, repo: string, warmup: number, count: number): Promise<Stats> {
  const latencies: number[] = []
  for (let i = -warmup; i < count; i++) {
    const started = performance.now()
    const res = await fetch(`${base}/v2/${repo}/blobs/${randomDigest()}`, { signal: AbortSignal.timeout(10_000) })
    await res.arrayBuffer()
    if (res.status !== 404) throw new Error(`${base}: expected 404 for a missing blob, got ${res.status}`)
    if (i >= 0) latencies.push(performance.now() - started)
  }
  return stats(latencies)
}

function p2pArgs (p: { http: number, p2p: number }, keyFile: string, bootstrap: readonly string[]): string[] {
  return ['--p2p-listen', `/ip4/127.0.0.1/tcp/${p.p2p}`, '--peer-address', `127.0.0.1:${p.http}`, '--cluster-key-file', keyFile,
    ...bootstrap.filter((b) => !b.endsWith(`/${p.p2p}`)).flatMap((b) => ['--bootstrap', b])]
}

async function startCluster (teardown: Teardown, work: string, n: number, upstream: string, isP2p: boolean): Promise<{ agents: DistAgent[], meshMs?: number }> {
  const keyFile = join(work, `cluster-${n}.key`)
  await writeFile(keyFile, generateClusterKey(), { mode: 0o600 })
  const ports = await Promise.all(Array.from({ length: n }, async () => ({ http: await freePort(), p2p: await freePort() })))
  const bootstrap = ports.slice(0, BOOTSTRAP_PEERS).map((p) => `/ip4/127.0.0.1/tcp/${p.p2p}`)
  const agents = await Promise.all(ports.map(async (p, i) => {
    const agent = await startDistAgent({
      name: `agent-${n}-${i}`,
      listen: `127.0.0.1:${p.http}`,
      dataDir: join(work, `data-${n}-${i}-${isP2p ? 'p2p' : 'alone'}`),
      args: ['--registry', `bench.test=${upstream}`, '--default-registry', 'bench.test', ...(isP2p ? p2pArgs(p, keyFile, bootstrap) : [])],
    })
    teardown.add(agent.name, agent.stop)
    return agent
  }))
  if (!isP2p) return { agents }
  const started = performance.now()
  await waitFor(async () => (await Promise.all(agents.map(async (a) => await a.metric('flotilla_p2p_peers')))).every((c) => c >= n - 1),
    { timeoutMs: MESH_TIMEOUT_MS, intervalMs: 100, what: `a full mesh of ${n} agents` })
  return { agents, meshMs: performance.now() - started }
}

async function main (teardown: Teardown): Promise<void> {
  const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false }, n: { type: 'string' } } })
  const isQuick = values.quick === true
  const counts = (values.n ?? (isQuick ? '4' : '4,8')).split(',').map(Number)
  if (counts.some((n) => !Number.isInteger(n) || n < 2 || n > 16)) throw new TypeError(`--n takes agent counts in 2..16, got ${values.n}`)
  const requests = isQuick ? 200 : 1000
  const warmup = 50
  const startedAt = new Date()
  const machine = describeMachine()
  await assertBuilt()
  const work = await makeTempDir('p2p-miss')
  teardown.add('work dir', work.cleanup)
  const registry = await startDistribution()
  teardown.add('distribution', registry.stop)

  const rows: Row[] = []
  log(`Distribution directly: ${warmup} + ${requests} misses`)
  rows.push({ label: 'Distribution, asked directly', stats: await measureMisses(registry.url, 'bench/miss', warmup, requests) })
  {
    const { agents } = await startCluster(teardown, work.path, 1, registry.url, false)
    const agent = agents[0] as DistAgent
    log('one flotilla without P2P')
    rows.push({ label: 'flotilla alone (upstream asked)', stats: await measureMisses(agent.url, 'bench/miss', warmup, requests) })
    await agent.stop()
  }
  for (const n of counts) {
    const { agents, meshMs } = await startCluster(teardown, work.path, n, registry.url, true)
    log(`${n} agents with P2P (mesh after ${Math.round(meshMs ?? 0)} ms): misses at a non-bootstrap agent`)
    const asked = agents.at(-1) as DistAgent
    rows.push({ label: `flotilla, ${n} agents with P2P`, stats: await measureMisses(asked.url, 'bench/miss', warmup, requests), ...(meshMs === undefined ? {} : { meshMs }) })
    await Promise.all(agents.map(async (a) => await a.stop()))
  }

  const f = (v: number): string => v.toFixed(1)
  const table = markdownTable(['Answered by', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms', 'Full mesh after'],
    rows.map((r) => [r.label, f(r.stats.p50), f(r.stats.p90), f(r.stats.p99), f(r.stats.max), r.meshMs === undefined ? '—' : `${(r.meshMs / 1000).toFixed(1)} s`]))
  const p2p = rows.filter((r) => r.meshMs !== undefined)
  const report = renderReport({
    title: `flotilla peer to peer: miss latency${isQuick ? ' (quick run)' : ''}`,
    machine,
    command: invocation(fileURLToPath(import.meta.url)),
    startedAt,
    facts: [
      `Each request: GET of a random sha256 digest (held by nobody, unknown upstream) from a fresh Node fetch client, sequential; ${warmup} warm-up requests, then ${requests} recorded`,
      'Upstream: Distribution 2.8 on 127.0.0.1; agents are separate processes on 127.0.0.1, P2P bootstrapped from the first 3; the asked agent is the last one started',
      'With P2P a miss is: the node\'s own provider records (a small cluster answers locally), then one hop to the digest\'s rendezvous owner, which asks the upstream (unless the asked agent is the owner)',
    ],
    table,
    notes: [
      `Target p99 < ${TARGET_P99_MS} ms with P2P: ${p2p.map((r) => `${r.label} ${f(r.stats.p99)} ms — ${r.stats.p99 < TARGET_P99_MS ? 'met' : '**not met**'}`).join('; ')}.`,
    ],
  })
  const path = await writeResult('p2p-miss.md', report)
  console.log(report)
  log(`written to ${path}`)
}

await runBounded(log, RUN_DEADLINE_MS, main)
