// The redirector's speed (issue 15, check 5): redirect decisions per second and p99 latency at 16 connections
// (autocannon, blob HEAD and GET answered 307 with the existence caches warm), next to Distribution answering a
// warm manifest HEAD on the same machine and the flotilla mirror role answering one (the bar: a warm
// redirect at least as fast as the mirror role's warm manifest HEAD). Plus the choice itself in-process:
// RegionTable.match over 5,000 IPv4 and 1,000 IPv6 networks, ns per lookup.
//
//   npx tsx bench/redirect-bench.ts [--quick]
//        (needs docker-registry, skopeo, umoci; `npm run build` first: flotilla runs from dist/)
import { randomBytes } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import { loadavg } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { parseArgs } from 'node:util'
import autocannon from 'autocannon'
import { request } from 'undici'
import { RegionTable, type Region } from '../src/redirect/region-table.js'
import { startDistribution, type Distribution } from '../test/helpers/distribution.js'
import { freePort } from '../test/helpers/free-port.js'
import { pushBlob } from '../test/helpers/push-blob.js'
import { makeTempDir } from '../test/helpers/temp-dir.js'
import { buildTestImage, hostManifest, pushTestImage } from '../test/helpers/test-image.js'
import { MANIFEST_ACCEPT } from './blob-fixture.js'
import { runHeadLoad, type HeadLoadResult } from './head-load.js'
import { assertBuilt, startDistAgent } from './lib-dist-agent.js'
import { describeMachine, invocation, markdownTable, median, renderReport, writeResult } from './lib-report.js'
import { runBounded, type Log, type Teardown } from './lib-teardown.js'

const REPO = 'bench/redirect'
const CONNECTIONS = 16
/** Blobs the region holds and the load cycles through (besides the test image's own). */
const EXTRA_BLOBS = 8
/** The redirector's table: the bench's own region, plus filler regions making it this big. */
const FILLER_REGIONS = 50
const FILLER_V4_PER_REGION = 100
const FILLER_V6_PER_REGION = 20
/** An address in no region (outside the fillers' 1–126.x.x.x and their 2a0x::/16). */
const NO_REGION_ADDRESS = '203.0.113.9'

const log: Log = (message) => { console.error(`[redirect-bench] ${message}`) }

interface Settings { readonly durationS: number, readonly rounds: number, readonly lookups: number }
const FULL: Settings = { durationS: 5, rounds: 5, lookups: 2_000_000 }
const QUICK: Settings = { durationS: 2, rounds: 1, lookups: 200_000 }

interface LoadResult extends HeadLoadResult { readonly redirects: number }

/** HEAD or GET on `connections` keep-alive connections, cycling through `paths`; every answer must be a 307. */
async function runRedirectLoad (baseUrl: string, paths: readonly string[], method: 'HEAD' | 'GET', durationS: number, headers: Record<string, string> = {}): Promise<LoadResult> {
  // `requests` (a cycle of paths per connection) and the 3xx count are autocannon's, outside bench/autocannon.d.ts's subset.
  const options: autocannon.Options & { requests: Array<{ path: string }> } = {
    url: baseUrl, method, connections: CONNECTIONS, duration: durationS, headers, timeout: 10, requests: paths.map((path) => ({ path })),
  }
  const r = await autocannon(options) as autocannon.Result & { '3xx': number }
  return {
    reqPerSec: r.requests.total / r.duration, total: r.requests.total, non2xx: r.non2xx, errors: r.errors, timeouts: r.timeouts,
    p50LatencyMs: r.latency.p50, p99LatencyMs: r.latency.p99, redirects: r['3xx'],
  }
}

/** A network-aligned IPv4 CIDR in 1–126.x.x.x, prefix 12–32 (mostly /16–/24, as real tables are). */
function randomV4Cidr (): string {
  const prefixes = [12, 14, 16, 16, 18, 19, 20, 20, 21, 22, 22, 23, 24, 24, 24, 24, 26, 28, 30, 32]
  const prefix = prefixes[Math.floor(Math.random() * prefixes.length)] ?? 24
  const value = ((1 + Math.floor(Math.random() * 126)) << 24 | randomBytes(3).readUIntBE(0, 3)) >>> 0
  const network = prefix === 32 ? value : (value & (~0 << (32 - prefix))) >>> 0
  return `${[24, 16, 8, 0].map((s) => (network >>> s) & 255).join('.')}/${prefix}`
}

/** A network-aligned IPv6 CIDR in 2a0x::/16, prefix 29–64. */
function randomV6Cidr (): string {
  const prefixes = [29, 32, 32, 36, 40, 44, 48, 48, 48, 56, 64]
  const prefix = prefixes[Math.floor(Math.random() * prefixes.length)] ?? 48
  let value = (0x2a00n + BigInt(Math.floor(Math.random() * 16))) << 112n | (BigInt(`0x${randomBytes(14).toString('hex')}`))
  value = (value >> BigInt(128 - prefix)) << BigInt(128 - prefix)
  const hextets = Array.from({ length: 8 }, (_, i) => ((value >> BigInt(112 - 16 * i)) & 0xffffn).toString(16))
  return `${hextets.join(':')}/${prefix}`
}

/** An address inside `cidr` (random host bits). */
function addressIn (cidr: string): string {
  const [net = '', bits = '0'] = cidr.split('/')
  const prefix = Number(bits)
  if (net.includes(':')) {
    let value = 0n
    for (const h of net.split(':')) value = (value << 16n) | BigInt(parseInt(h, 16))
    const host = prefix === 128 ? 0n : BigInt(`0x${randomBytes(16).toString('hex')}`) & ((1n << BigInt(128 - prefix)) - 1n)
    value |= host
    return Array.from({ length: 8 }, (_, i) => ((value >> BigInt(112 - 16 * i)) & 0xffffn).toString(16)).join(':')
  }
  const base = net.split('.').reduce((n, o) => ((n << 8) | Number(o)) >>> 0, 0)
  const host = prefix === 32 ? 0 : randomBytes(4).readUInt32BE(0) & ((2 ** (32 - prefix)) - 1)
  const value = (base | host) >>> 0
  return [24, 16, 8, 0].map((s) => (value >>> s) & 255).join('.')
}

function fillerRegions (v4PerRegion: number, v6PerRegion: number, count: number): Region[] {
  const seen = new Set<string>()
  const unique = (make: () => string): string => {
    for (;;) {
      const c = make()
      if (!seen.has(c)) { seen.add(c); return c }
    }
  }
  return Array.from({ length: count }, (_, i) => ({
    name: `filler-${i}`,
    blobBase: `http://192.0.2.${1 + (i % 250)}:5000`,
    cidrs: [...Array.from({ length: v4PerRegion }, () => unique(randomV4Cidr)), ...Array.from({ length: v6PerRegion }, () => unique(randomV6Cidr))],
  }))
}

interface MatchResult { readonly family: string, readonly cidrs: number, readonly nsPerLookup: number, readonly hitRate: number }

/** RegionTable.match in a loop over prepared addresses (half inside a network of the table, half random); the median of 5 passes. */
function measureMatch (lookups: number): MatchResult[] {
  const regions = fillerRegions(100, 20, 50) // 5,000 IPv4 and 1,000 IPv6 networks
  const table = new RegionTable(regions)
  const all = regions.flatMap((r) => r.cidrs)
  const out: MatchResult[] = []
  for (const family of ['IPv4', 'IPv6'] as const) {
    const cidrs = all.filter((c) => c.includes(':') === (family === 'IPv6'))
    const addresses = Array.from({ length: 10_000 }, (_, i) => {
      if (i % 2 === 0) return addressIn(cidrs[Math.floor(Math.random() * cidrs.length)] ?? '')
      return family === 'IPv4' ? addressIn(`${1 + Math.floor(Math.random() * 223)}.0.0.0/8`) : addressIn('2a00:0:0:0:0:0:0:0/12')
    })
    let hits = 0
    for (const a of addresses) if (table.match(a) !== undefined) hits++
    const passes: number[] = []
    for (let pass = 0; pass < 5; pass++) {
      let sink = 0
      const started = performance.now()
      for (let i = 0; i < lookups; i++) if (table.match(addresses[i % addresses.length] ?? '') !== undefined) sink++
      passes.push((performance.now() - started) * 1e6 / lookups)
      if (sink < 0) log('unreachable')
    }
    out.push({ family, cidrs: cidrs.length, nsPerLookup: median(passes), hitRate: hits / addresses.length })
    log(`match: ${family} over ${cidrs.length} networks: ${median(passes).toFixed(0)} ns per lookup (passes ${passes.map((p) => p.toFixed(0)).join(', ')}), hit rate ${(hits / addresses.length).toFixed(2)}`)
  }
  return out
}

async function main (teardown: Teardown): Promise<void> {
  const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false } } })
  const settings = values.quick === true ? QUICK : FULL
  const startedAt = new Date()
  const machine = describeMachine()
  await assertBuilt()

  const matches = measureMatch(settings.lookups)

  const work = await makeTempDir('redirect-bench')
  teardown.add('work dir', work.cleanup)
  const started = await Promise.allSettled([startDistribution(), startDistribution(), buildTestImage({ largeLayerMiB: 1, tag: 'redirect' })])
  for (const s of started.slice(0, 2)) if (s.status === 'fulfilled') teardown.add('distribution', (s.value as Distribution).stop)
  const failed = started.find((s) => s.status === 'rejected')
  if (failed !== undefined) throw (failed as PromiseRejectedResult).reason
  const [origin, region, image] = started.map((s) => (s as PromiseFulfilledResult<unknown>).value) as [Distribution, Distribution, Awaited<ReturnType<typeof buildTestImage>>]
  await pushTestImage(image.layoutDir, origin.host, REPO, image.tag)
  await pushTestImage(image.layoutDir, region.host, REPO, image.tag)
  const extra: string[] = []
  for (let i = 0; i < EXTRA_BLOBS; i++) extra.push(await pushBlob(region.url, REPO, randomBytes(4096)))
  const digests = [...image.allBlobDigests, ...extra]
  const manifest = hostManifest(image)
  log(`origin ${origin.url}, region ${region.url}; ${digests.length} blobs in the region`)

  const fillers = fillerRegions(FILLER_V4_PER_REGION, FILLER_V6_PER_REGION, FILLER_REGIONS)
  const tableSize = fillers.reduce((n, r) => n + r.cidrs.length, 0) + 1
  const configFile = join(work.path, 'redirector.yaml')
  // JSON is YAML.
  await writeFile(configFile, JSON.stringify({
    role: 'redirector',
    redirect: {
      origin: origin.url,
      regions: [{ name: 'local', cidrs: ['127.0.0.0/8'], blobBase: region.url }, ...fillers],
      trustedProxies: ['127.0.0.1/32'],
      existenceTTL: '10m',
    },
  }, null, 1))
  const redirector = await startDistAgent({
    name: 'redirector', listen: `127.0.0.1:${await freePort()}`, dataDir: join(work.path, 'redirector-data'), logFile: join(work.path, 'redirector.log'),
    args: ['--role', 'redirector', '--config', configFile],
  })
  teardown.add('redirector', redirector.stop)
  const mirror = await startDistAgent({
    name: 'mirror', listen: `127.0.0.1:${await freePort()}`, dataDir: join(work.path, 'mirror-data'), logFile: join(work.path, 'mirror.log'),
    args: ['--role', 'mirror', '--allow-cidr', '127.0.0.1/32', '--registry', `${origin.host}=${origin.url}`, '--default-registry', origin.host],
  })
  teardown.add('mirror', mirror.stop)

  // Warm: every blob's existence at the region known (and checked to be a redirect there), every manifest cached.
  const blobPaths = digests.map((d) => `/v2/${REPO}/blobs/${d}`)
  for (const path of blobPaths) {
    for (const method of ['HEAD', 'GET'] as const) {
      const res = await request(`${redirector.url}${path}`, { method })
      await res.body.dump()
      if (res.statusCode !== 307 || res.headers.location !== `${region.url}${path}`) throw new Error(`${method} ${path}: ${res.statusCode} → ${String(res.headers.location)}; expected 307 → the region`)
    }
    const res = await request(`${redirector.url}${path}`, { method: 'HEAD', headers: { 'x-forwarded-for': NO_REGION_ADDRESS } })
    await res.body.dump()
    if (res.statusCode !== 307 || res.headers.location !== `${origin.url}${path}`) throw new Error(`HEAD ${path} for ${NO_REGION_ADDRESS}: ${res.statusCode} → ${String(res.headers.location)}; expected 307 → the origin`)
  }
  const manifestPath = `/v2/${REPO}/manifests/${manifest.digest}`
  const manifestTargets = { distribution: origin.url, mirror: mirror.url, redirector: redirector.url }
  for (const [name, url] of Object.entries(manifestTargets)) {
    for (const method of ['GET', 'HEAD', 'HEAD'] as const) {
      const res = await request(`${url}${manifestPath}`, { method, headers: { accept: MANIFEST_ACCEPT } })
      await res.body.dump()
      if (res.statusCode !== 200 || res.headers['docker-content-digest'] !== manifest.digest) throw new Error(`${name}: ${method} ${manifestPath}: ${res.statusCode}`)
    }
  }

  type Row = 'redirect-head' | 'redirect-get' | 'redirect-origin' | 'redirector-manifest' | 'mirror-manifest' | 'distribution-manifest'
  const rows: Record<Row, string> = {
    'redirect-head': 'flotilla --role redirector: blob HEAD → 307 to the region (existence known)',
    'redirect-get': 'flotilla --role redirector: blob GET → 307 to the region (existence known)',
    'redirect-origin': `flotilla --role redirector: blob HEAD, X-Forwarded-For ${NO_REGION_ADDRESS} (no region) → 307 to the origin`,
    'redirector-manifest': 'flotilla --role redirector: warm manifest HEAD by digest (from the origin, cached)',
    'mirror-manifest': 'flotilla --role mirror: warm manifest HEAD by digest',
    'distribution-manifest': 'Distribution 2.8 (`docker-registry serve`): manifest HEAD by digest',
  }
  const run = async (row: Row): Promise<LoadResult> => {
    const signal = new AbortController().signal
    switch (row) {
      case 'redirect-head': return await runRedirectLoad(redirector.url, blobPaths, 'HEAD', settings.durationS)
      case 'redirect-get': return await runRedirectLoad(redirector.url, blobPaths, 'GET', settings.durationS)
      case 'redirect-origin': return await runRedirectLoad(redirector.url, blobPaths, 'HEAD', settings.durationS, { 'x-forwarded-for': NO_REGION_ADDRESS })
      default: {
        const url = row === 'distribution-manifest' ? origin.url : row === 'mirror-manifest' ? mirror.url : redirector.url
        const r = await runHeadLoad(`${url}${manifestPath}`, { connections: CONNECTIONS, durationS: settings.durationS, headers: { accept: MANIFEST_ACCEPT }, signal })
        return { ...r, redirects: 0 }
      }
    }
  }
  const order = Object.keys(rows) as Row[]
  const results = new Map<Row, LoadResult[]>(order.map((r) => [r, []]))
  for (let round = 0; round < settings.rounds; round++) {
    // Each round in another order, so that no row always runs first (or last) on a shared machine.
    const rotated = [...order.slice(round % order.length), ...order.slice(0, round % order.length)]
    for (const row of rotated) {
      const r = await run(row)
      const isRedirect = row.startsWith('redirect-')
      const bad = r.errors + r.timeouts + (isRedirect ? r.total - r.redirects : r.non2xx)
      if (bad > 0) throw new Error(`${row}: ${bad} requests failed or answered other than ${isRedirect ? '307' : '2xx'} (${JSON.stringify(r)})`)
      results.get(row)?.push(r)
      log(`round ${round + 1}: ${row}: ${r.reqPerSec.toFixed(0)} req/s, p50 ${r.p50LatencyMs} ms, p99 ${r.p99LatencyMs} ms`)
    }
  }
  const redirects = await redirector.metric('flotilla_redirects_total', { region: 'local' })
  const fallbacks = await redirector.metric('flotilla_redirect_fallbacks_total')

  /** autocannon's latencies are whole milliseconds. */
  const ms = (v: number): string => v < 1 ? '< 1' : v.toFixed(0)
  const med = (row: Row, f: (r: LoadResult) => number): number => median((results.get(row) ?? []).map(f))
  const mirrorRate = med('mirror-manifest', (r) => r.reqPerSec)
  const distRate = med('distribution-manifest', (r) => r.reqPerSec)
  const table = markdownTable(
    ['Measurement (16 connections)', 'req/s (median)', 'p50 ms', 'p99 ms', 'vs mirror manifest HEAD', 'vs Distribution manifest HEAD', 'Runs, req/s'],
    order.map((row) => {
      const rate = med(row, (r) => r.reqPerSec)
      return [rows[row], rate.toFixed(0), ms(med(row, (r) => r.p50LatencyMs)), ms(med(row, (r) => r.p99LatencyMs)),
        `${(rate / mirrorRate).toFixed(2)}×`, `${(rate / distRate).toFixed(2)}×`, (results.get(row) ?? []).map((r) => r.reqPerSec.toFixed(0)).join(', ')]
    }),
  )
  const matchTable = markdownTable(['RegionTable.match (in-process)', 'Networks', 'ns per lookup (median of 5 passes)', 'Lookups per second', 'Hit rate of the addresses'],
    matches.map((m) => [`${m.family} address`, String(m.cidrs), m.nsPerLookup.toFixed(0), (1e9 / m.nsPerLookup).toFixed(0), m.hitRate.toFixed(2)]))
  // A warm redirect is a blob HEAD or GET answered 307: both rows count. On a shared 2-core machine one row moves by
  // ±30 % from run to run, so the verdict says when the gap is within the rows' own spread.
  const redirectRuns = [...(results.get('redirect-head') ?? []), ...(results.get('redirect-get') ?? [])].map((r) => r.reqPerSec)
  const mirrorRuns = (results.get('mirror-manifest') ?? []).map((r) => r.reqPerSec)
  const redirectRate = median(redirectRuns)
  const range = (runs: number[]): string => `${Math.min(...runs).toFixed(0)}–${Math.max(...runs).toFixed(0)}`
  const compared = `warm redirects (HEAD and GET runs together) ${redirectRate.toFixed(0)} req/s median (runs ${range(redirectRuns)}) against the mirror role's warm manifest HEAD ${mirrorRate.toFixed(0)} req/s (runs ${range(mirrorRuns)}), ${(redirectRate / mirrorRate).toFixed(2)}×`
  const verdict = redirectRate >= mirrorRate
    ? `The issue's bar is met: ${compared}; a redirect is answered about ${(redirectRate / distRate).toFixed(0)}× as often as Distribution answers a manifest HEAD.`
    : redirectRate >= Math.min(...mirrorRuns)
      ? `The issue's bar is met within this machine's run-to-run spread, not clearly: ${compared}.`
      : `The issue's bar is **not met**: ${compared}.`
  const report = renderReport({
    title: 'Redirector: redirect decisions per second and p99 at 16 connections, next to warm manifest HEADs',
    machine, command: invocation(process.argv[1] ?? 'bench/redirect-bench.ts'), startedAt,
    facts: [
      `Load average at the end: ${(loadavg()[0] ?? 0).toFixed(2)}`,
      `Origin and region: two Distribution 2.8 (\`docker-registry serve\`) on 127.0.0.1, each holding \`${REPO}:${image.tag}\` (the test image, 1 MiB random layer); the region also ${EXTRA_BLOBS} extra 4 KiB blobs`,
      `Redirector: \`node dist/cli/main.js serve --role redirector --config FILE\` on 127.0.0.1; its table: region \`local\` (127.0.0.0/8 → the region Distribution) plus ${FILLER_REGIONS} filler regions, ${tableSize} networks in all (${FILLER_REGIONS * FILLER_V4_PER_REGION} IPv4, ${FILLER_REGIONS * FILLER_V6_PER_REGION} IPv6); trustedProxies 127.0.0.1/32; existenceTTL 10m`,
      `Warm: before loading, each of the ${digests.length} blob paths was asked once with HEAD and GET (307 to the region checked) and once with the no-region address (307 to the origin); every manifest target answered a GET and two HEADs with the digest`,
      `Load: autocannon 9 in the bench process, ${CONNECTIONS} keep-alive connections, ${settings.durationS} s per run, ${settings.rounds} round(s), the rows rotated each round; the redirect rows cycle through the ${digests.length} blob paths and every answer had to be a 307 (the manifest rows a 200). Redirector counters afterwards: flotilla_redirects_total{region="local"} ${redirects}, flotilla_redirect_fallbacks_total ${fallbacks}`,
      `Mirror: \`node dist/cli/main.js serve --role mirror --allow-cidr 127.0.0.1/32 --registry ORIGIN=… --default-registry ORIGIN\`. Everything shares the machine's ${machine.nproc} cores, autocannon included`,
      `RegionTable.match: ${FILLER_REGIONS} regions with 100 random network-aligned IPv4 networks (1–126.x, /12–/32, mostly /16–/24) and 20 IPv6 (2a0x::, /29–/64) each; 10,000 prepared addresses, half inside a network of the table, half random; ${settings.lookups} lookups per pass, from source (tsx) in the bench process`,
    ],
    table: `${table}\n\n${matchTable}`,
    notes: [verdict],
  })
  const path = await writeResult('redirect.md', report)
  console.log(report)
  log(`wrote ${path}`)
}

await runBounded(log, parseArgs({ options: { quick: { type: 'boolean', default: false } }, strict: false }).values.quick === true ? 4 * 60_000 : 10 * 60_000, main)
