import { request } from 'undici'
import { MANIFEST_ACCEPT } from './blob-fixture.js'
import { manifestUrl, type BenchContext } from './bench-context.js'
import { runHeadLoad, type HeadLoadResult } from './head-load.js'
import { TARGETS, type TargetName } from './measure-warm.js'

export const MANIFEST_REFS = ['digest', 'tag'] as const
export type ManifestRefKind = typeof MANIFEST_REFS[number]

export type HeadResult = Record<ManifestRefKind, Record<TargetName, HeadLoadResult>>

/**
 * Manifest HEAD requests per second with autocannon, by digest and by tag, against each target. The
 * pull-through targets are warmed by one GET of each first, and every target must answer a HEAD with the
 * manifest's digest before it is loaded.
 */
export async function measureHead (ctx: BenchContext, urls: Record<TargetName, string>, signal: AbortSignal): Promise<HeadResult> {
  const { image, settings, log, dispatcher } = ctx
  const headers = { accept: MANIFEST_ACCEPT }
  for (const ref of MANIFEST_REFS) {
    for (const target of TARGETS) {
      for (const method of ['GET', 'HEAD'] as const) {
        const url = manifestUrl(urls[target], image, ref)
        const res = await request(url, { method, headers, dispatcher, signal })
        await res.body.dump()
        const digest = res.headers['docker-content-digest']
        if (res.statusCode !== 200 || digest !== image.manifest.digest) {
          throw new Error(`${method} ${url}: status ${res.statusCode}, digest ${String(digest)}; expected 200 and ${image.manifest.digest}`)
        }
      }
    }
  }

  const out: Partial<Record<ManifestRefKind, Partial<Record<TargetName, HeadLoadResult>>>> = {}
  for (const ref of MANIFEST_REFS) {
    const byTarget: Partial<Record<TargetName, HeadLoadResult>> = {}
    out[ref] = byTarget
    for (const target of TARGETS) {
      const r = await runHeadLoad(manifestUrl(urls[target], image, ref), {
        connections: settings.headConnections, durationS: settings.headDurationS, headers, signal,
      })
      byTarget[target] = r
      log(`head: by ${ref} on ${target}: ${r.reqPerSec.toFixed(0)} req/s (p99 ${r.p99LatencyMs} ms, non-2xx ${r.non2xx}, errors ${r.errors})`)
    }
  }
  return out as HeadResult
}
