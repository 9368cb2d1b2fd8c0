import type { Dispatcher } from 'undici'
import type { Distribution } from '../test/helpers/distribution.js'
import { startFlotilla, type FlotillaAgent } from '../test/helpers/flotilla-agent.js'
import type { BenchImage } from './blob-fixture.js'
import type { Download, Downloader } from './blob-download.js'
import type { RssSampler } from './rss-sampler.js'

export interface BenchSettings {
  /** Size of the big blob, bytes. */
  readonly blobBytes: number
  /** Timed sequential GETs per target in the warm test. */
  readonly warmGets: number
  readonly headConnections: number
  readonly headDurationS: number
  /** Cold pull-throughs per target and link setting (each on a fresh cache). */
  readonly coldRuns: number
  /** tc rate of the capped upstream link. */
  readonly capRate: string
  readonly concurrentClients: number
  /** Size of each of the concurrentClients different blobs of the distinct phase. */
  readonly distinctBlobBytes: number
}

export const FULL_SETTINGS: BenchSettings = {
  blobBytes: 200_000_000, warmGets: 5, headConnections: 16, headDurationS: 5, coldRuns: 3, capRate: '1gbit', concurrentClients: 50, distinctBlobBytes: 16_000_000,
}

export const QUICK_SETTINGS: BenchSettings = {
  blobBytes: 50_000_000, warmGets: 3, headConnections: 16, headDurationS: 2, coldRuns: 1, capRate: '1gbit', concurrentClients: 10, distinctBlobBytes: 8_000_000,
}

/** The registry name flotilla gives its one upstream (requests without `ns` go there). */
export const UPSTREAM_REGISTRY = 'upstream.bench.test'

import type { Log } from './lib-teardown.js'
export type { Log }

export interface BenchContext {
  readonly settings: BenchSettings
  readonly image: BenchImage
  /** The plain Distribution the image was pushed to (127.0.0.1). */
  readonly registry: Distribution
  /** For pushes and manifest requests. */
  readonly dispatcher: Dispatcher
  /** Client of the sequential blob GETs (curl when there is one). */
  readonly download: Downloader
  readonly sampler: RssSampler
  readonly log: Log
}

export function blobUrl (base: string, image: BenchImage): string {
  return `${base}/v2/${image.repo}/blobs/${image.layer.digest}`
}

export function manifestUrl (base: string, image: BenchImage, ref: 'tag' | 'digest'): string {
  return `${base}/v2/${image.repo}/manifests/${ref === 'tag' ? image.tag : image.manifest.digest}`
}

/** flotilla in front of `upstreamUrl`, its RSS sampled while it runs. */
export async function startBenchFlotilla (ctx: Pick<BenchContext, 'sampler'>, upstreamUrl: string): Promise<FlotillaAgent> {
  const agent = await startFlotilla({
    logLevel: 'warn',
    configYaml: `registries:\n  ${UPSTREAM_REGISTRY}: { endpoint: "${upstreamUrl}" }\ndefaultRegistry: ${UPSTREAM_REGISTRY}\n`,
  })
  const pid = agent.process.pid
  ctx.sampler.watch(pid)
  return {
    ...agent,
    stop: async () => {
      ctx.sampler.unwatch(pid)
      await agent.stop()
    },
  }
}

/** Downloads the big blob from `base` and fails unless all of it came with a 200. */
export async function fetchWholeBlob (ctx: Pick<BenchContext, 'image' | 'download'>, base: string, signal: AbortSignal, download = ctx.download): Promise<Download> {
  const url = blobUrl(base, ctx.image)
  const d = await download(url, signal)
  if (d.status !== 200 || d.bytes !== ctx.image.layer.size) {
    throw new Error(`GET ${url}: status ${d.status}, ${d.bytes} of ${ctx.image.layer.size} bytes`)
  }
  return d
}

/** Async teardown steps run newest first, each bounded, failures logged and not thrown. */
export { Teardown as Cleanups } from './lib-teardown.js'
