import { request } from 'undici'
import { startDistributionProxy } from '../test/helpers/distribution.js'
import { median } from './blob-download.js'
import { MANIFEST_ACCEPT } from './blob-fixture.js'
import { Cleanups, fetchWholeBlob, manifestUrl, startBenchFlotilla, type BenchContext } from './bench-context.js'
import { createNetnsLink, removeStaleLinks, type NetnsLink } from './netns-link.js'
import { startNetnsDistribution } from './netns-distribution.js'
import { pushBenchImage } from './registry-push.js'

export const COLD_SOURCES = ['direct', 'proxy', 'flotilla'] as const
export type ColdSource = typeof COLD_SOURCES[number]

export interface ColdTimes {
  /** Seconds from request to last byte, one per cold run. */
  readonly runs: readonly number[]
  readonly median: number
}

export type ColdLinkResult = Record<ColdSource, ColdTimes>

export interface ColdResult {
  readonly capRate: string
  readonly capped: ColdLinkResult
  readonly uncapped: ColdLinkResult
}

/**
 * Cold pull-through over a real link: the upstream Distribution runs in a network namespace of its own,
 * reached over a veth pair that tc caps at `capRate` (then uncapped). "direct" is a GET straight from
 * that upstream; "flotilla" and "proxy" are GETs through a fresh flotilla / Distribution proxy (empty
 * cache, started anew for every run) whose upstream is that Distribution. As in a real pull, the manifest
 * and the config go through the fresh cache first (untimed), then the timed GET of the big layer.
 */
export async function measureCold (ctx: BenchContext, signal: AbortSignal): Promise<ColdResult> {
  const { log, image, dispatcher, settings } = ctx
  const cleanups = new Cleanups(log)
  try {
    const stale = await removeStaleLinks()
    if (stale.length > 0) log(`cold: removed namespaces left by dead bench runs: ${stale.join(', ')}`)
    const link = await createNetnsLink()
    cleanups.add(`namespace ${link.netns}`, link.destroy)
    log(`cold: namespace ${link.netns}, veth ${link.hostAddress} <-> ${link.nsAddress}`)
    const upstream = await startNetnsDistribution({ netns: link.netns, address: link.nsAddress })
    cleanups.add('upstream Distribution', upstream.stop)
    await pushBenchImage(upstream.url, image, { dispatcher, signal })
    await fetchWholeBlob(ctx, upstream.url, signal) // its page cache, untimed

    const capped = await coldRuns(ctx, link, upstream.url, settings.capRate, signal)
    const uncapped = await coldRuns(ctx, link, upstream.url, undefined, signal)
    return { capRate: settings.capRate, capped, uncapped }
  } finally {
    await cleanups.run()
  }
}

async function coldRuns (ctx: BenchContext, link: NetnsLink, upstreamUrl: string, rate: string | undefined, signal: AbortSignal): Promise<ColdLinkResult> {
  const { log, settings } = ctx
  await link.setRate(rate)
  const label = rate ?? 'uncapped'
  const runs: Record<ColdSource, number[]> = { direct: [], proxy: [], flotilla: [] }
  for (let i = 0; i < settings.coldRuns; i++) {
    runs.direct.push((await fetchWholeBlob(ctx, upstreamUrl, signal)).ms / 1000)

    const flotilla = await startBenchFlotilla(ctx, upstreamUrl)
    try {
      await pullManifestAndConfig(ctx, flotilla.url, signal)
      runs.flotilla.push((await fetchWholeBlob(ctx, flotilla.url, signal)).ms / 1000)
    } finally {
      await flotilla.stop()
    }

    const proxy = await startDistributionProxy({ remoteUrl: upstreamUrl })
    try {
      await pullManifestAndConfig(ctx, proxy.url, signal)
      runs.proxy.push((await fetchWholeBlob(ctx, proxy.url, signal)).ms / 1000)
    } finally {
      await proxy.stop()
    }
    log(`cold (${label}): run ${i + 1}/${settings.coldRuns}: direct ${runs.direct.at(-1)?.toFixed(2)} s, flotilla ${runs.flotilla.at(-1)?.toFixed(2)} s, Distribution proxy ${runs.proxy.at(-1)?.toFixed(2)} s`)
  }
  const times = (s: ColdSource): ColdTimes => ({ runs: runs[s], median: median(runs[s]) })
  return { direct: times('direct'), proxy: times('proxy'), flotilla: times('flotilla') }
}

/** What a client fetches before the layers: the manifest by tag, then the config blob. */
async function pullManifestAndConfig (ctx: BenchContext, base: string, signal: AbortSignal): Promise<void> {
  const { image, dispatcher } = ctx
  const urls = [manifestUrl(base, image, 'tag'), `${base}/v2/${image.repo}/blobs/${image.config.digest}`]
  for (const url of urls) {
    const res = await request(url, { dispatcher, signal, headers: { accept: MANIFEST_ACCEPT } })
    await res.body.dump()
    if (res.statusCode !== 200) throw new Error(`GET ${url}: status ${res.statusCode}`)
  }
}
