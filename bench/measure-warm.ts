import { stat } from 'node:fs/promises'
import { join } from 'node:path'
import { waitFor } from '../test/helpers/wait-for.js'
import { megabytesPerSecond, median } from './blob-download.js'
import { fetchWholeBlob, type BenchContext } from './bench-context.js'

export const TARGETS = ['registry', 'proxy', 'flotilla'] as const
export type TargetName = typeof TARGETS[number]

export interface ThroughputResult {
  /** MB/s of each timed GET, in order. */
  readonly runs: readonly number[]
  readonly median: number
}

export type WarmResult = Record<TargetName, ThroughputResult>

/** Where Distribution's filesystem driver keeps a blob's bytes. */
function distributionBlobPath (dataDir: string, digest: string): string {
  const hex = digest.slice('sha256:'.length)
  return join(dataDir, 'docker', 'registry', 'v2', 'blobs', 'sha256', hex.slice(0, 2), hex, 'data')
}

/**
 * Warm blob throughput: each target is warmed by one GET (for the pull-through ones that fills the cache),
 * then `warmGets` timed GETs each, round-robin so that any drift of the machine hits all three alike.
 */
export async function measureWarm (ctx: BenchContext, urls: Record<TargetName, string>, proxyDataDir: string, signal: AbortSignal): Promise<WarmResult> {
  const { image, settings, log } = ctx
  for (const target of TARGETS) {
    const d = await fetchWholeBlob(ctx, urls[target], signal)
    log(`warm: warming GET from ${target}: ${megabytesPerSecond(d.bytes, d.ms).toFixed(0)} MB/s`)
  }
  // Distribution's proxy may finish writing its cache a moment after the client got the last byte.
  const cached = distributionBlobPath(proxyDataDir, image.layer.digest)
  await waitFor(async () => (await stat(cached).catch(() => undefined))?.size === image.layer.size, {
    timeoutMs: 30_000, what: 'Distribution proxy to have cached the blob', signal,
  })

  const runs: Record<TargetName, number[]> = { registry: [], proxy: [], flotilla: [] }
  for (let i = 0; i < settings.warmGets; i++) {
    for (const target of TARGETS) {
      const d = await fetchWholeBlob(ctx, urls[target], signal)
      runs[target].push(megabytesPerSecond(d.bytes, d.ms))
    }
    log(`warm: round ${i + 1}/${settings.warmGets}: ${TARGETS.map((t) => `${t} ${runs[t].at(-1)?.toFixed(0)} MB/s`).join(', ')}`)
  }
  const result = (t: TargetName): ThroughputResult => ({ runs: runs[t], median: median(runs[t]) })
  return { registry: result('registry'), proxy: result('proxy'), flotilla: result('flotilla') }
}
