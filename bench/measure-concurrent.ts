import { setMaxListeners } from 'node:events'
import { performance } from 'node:perf_hooks'
import { Agent } from 'undici'
import { startCountingProxy, type CountingProxy } from '../test/helpers/counting-proxy.js'
import { startDistributionProxy } from '../test/helpers/distribution.js'
import { undiciDownloader } from './blob-download.js'
import { blobUrl, Cleanups, fetchWholeBlob, startBenchFlotilla, type BenchContext } from './bench-context.js'

export const CONCURRENT_TARGETS = ['proxy', 'flotilla'] as const
export type ConcurrentTarget = typeof CONCURRENT_TARGETS[number]

/** How a crowd of simultaneous clients fared. */
export interface ClientsOutcome {
  readonly clients: number
  /** Clients that got their whole blob with a 200. */
  readonly clientsOk: number
  /** From the first request to the last client's last byte. */
  readonly wallS: number
  /** First failure, if any client failed. */
  readonly firstError?: string
}

/** Runs every client at once and says how they fared. */
export async function runClients (clients: ReadonlyArray<() => Promise<unknown>>): Promise<ClientsOutcome> {
  const started = performance.now()
  const outcomes = await Promise.allSettled(clients.map(async (client) => await client()))
  const failed = outcomes.find((o): o is PromiseRejectedResult => o.status === 'rejected')
  return {
    clients: outcomes.length,
    clientsOk: outcomes.filter((o) => o.status === 'fulfilled').length,
    wallS: (performance.now() - started) / 1000,
    ...(failed === undefined ? {} : { firstError: (failed.reason as Error).message }),
  }
}

export interface ConcurrentTargetResult extends ClientsOutcome {
  /** Body bytes the upstream sent for the blob. */
  readonly upstreamBytes: number
  /** GETs of the blob the upstream saw. */
  readonly upstreamGets: number
}

export type ConcurrentResult = Record<ConcurrentTarget, ConcurrentTargetResult>

/**
 * `concurrentClients` simultaneous cold GETs of the big blob through a fresh cache, the upstream behind a
 * counting proxy: how many times did the blob cross the upstream link?
 */
export async function measureConcurrent (ctx: BenchContext, signal: AbortSignal): Promise<ConcurrentResult> {
  const cleanups = new Cleanups(ctx.log)
  // Every client request listens on the phase's signal.
  setMaxListeners(ctx.settings.concurrentClients + 16, signal)
  try {
    const counting = await startCountingProxy({ upstreamUrl: ctx.registry.url })
    cleanups.add('counting proxy', counting.close)
    const flotilla = await runTarget(ctx, 'flotilla', counting, signal)
    const proxy = await runTarget(ctx, 'proxy', counting, signal)
    return { flotilla, proxy }
  } finally {
    await cleanups.run()
  }
}

async function runTarget (ctx: BenchContext, target: ConcurrentTarget, counting: CountingProxy, signal: AbortSignal): Promise<ConcurrentTargetResult> {
  const { settings, image, log } = ctx
  counting.reset()
  const server = target === 'flotilla'
    ? await startBenchFlotilla(ctx, counting.url)
    : await startDistributionProxy({ remoteUrl: counting.url })
  // In process (50 curl processes would cost more than the server under test); a connection per client.
  const dispatcher = new Agent({ headersTimeout: 120_000, bodyTimeout: 120_000 })
  const download = undiciDownloader(dispatcher)
  try {
    const outcome = await runClients(Array.from({ length: settings.concurrentClients }, () => async () => await fetchWholeBlob(ctx, server.url, signal, download)))
    signal.throwIfAborted()
    const path = new URL(blobUrl(server.url, image)).pathname
    const result: ConcurrentTargetResult = { ...outcome, upstreamBytes: counting.bytes(path), upstreamGets: counting.count(path, 'GET') }
    log(`concurrent: ${target}: ${result.clientsOk}/${result.clients} clients ok in ${result.wallS.toFixed(1)} s; upstream sent ${(result.upstreamBytes / image.layer.size).toFixed(2)}x the blob in ${result.upstreamGets} GETs`)
    return result
  } finally {
    await dispatcher.close().catch(() => dispatcher.destroy())
    await server.stop()
  }
}
