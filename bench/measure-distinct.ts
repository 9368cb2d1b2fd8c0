import { randomBytes } from 'node:crypto'
import { setMaxListeners } from 'node:events'
import { Agent, request } from 'undici'
import { startDistributionProxy } from '../test/helpers/distribution.js'
import { pushBlob } from '../test/helpers/push-blob.js'
import { Cleanups, startBenchFlotilla, type BenchContext } from './bench-context.js'
import { runClients, type ClientsOutcome } from './measure-concurrent.js'
import { readRss } from './rss-sampler.js'

export const DISTINCT_TARGETS = ['proxy', 'flotilla'] as const
export type DistinctTarget = typeof DISTINCT_TARGETS[number]

export interface DistinctTargetResult extends ClientsOutcome {
  /** The server's peak RSS during the GETs (100 ms samples), bytes. */
  readonly rssPeak: number
}

export interface DistinctResult {
  readonly blobBytes: number
  readonly proxy: DistinctTargetResult
  readonly flotilla: DistinctTargetResult
}

const REPO = 'bench/distinct'

/**
 * `concurrentClients` simultaneous cold GETs, each of a different blob, through a fresh cache: the case where
 * every download holds its own buffers, so what bounds memory is the process-wide bound, not sharing.
 */
export async function measureDistinct (ctx: BenchContext, signal: AbortSignal): Promise<DistinctResult> {
  const { settings, log } = ctx
  setMaxListeners(settings.concurrentClients + 16, signal)
  const digests: string[] = []
  for (let i = 0; i < settings.concurrentClients; i++) digests.push(await pushBlob(ctx.registry.url, REPO, randomBytes(settings.distinctBlobBytes)))
  log(`distinct: pushed ${digests.length} blobs of ${(settings.distinctBlobBytes / 1e6).toFixed(0)} MB`)
  const flotilla = await runTarget(ctx, 'flotilla', digests, signal)
  const proxy = await runTarget(ctx, 'proxy', digests, signal)
  return { blobBytes: settings.distinctBlobBytes, flotilla, proxy }
}

async function runTarget (ctx: BenchContext, target: DistinctTarget, digests: readonly string[], signal: AbortSignal): Promise<DistinctTargetResult> {
  const { settings, log } = ctx
  const cleanups = new Cleanups(log)
  try {
    const server = target === 'flotilla' ? await startBenchFlotilla(ctx, ctx.registry.url) : await startDistributionProxy({ remoteUrl: ctx.registry.url })
    cleanups.add(target, server.stop)
    const dispatcher = new Agent({ headersTimeout: 120_000, bodyTimeout: 120_000, connections: digests.length })
    cleanups.add('HTTP client', async () => { await dispatcher.close().catch(() => dispatcher.destroy()) })
    let rssPeak = 0
    const sample = async (): Promise<void> => { rssPeak = Math.max(rssPeak, (await readRss(server.process.pid)) ?? 0) }
    const timer = setInterval(() => { void sample() }, 100)
    cleanups.add('RSS samples', async () => { clearInterval(timer) })
    const outcome = await runClients(digests.map((digest) => async () => {
      const res = await request(`${server.url}/v2/${REPO}/blobs/${digest}`, { dispatcher, signal })
      let bytes = 0
      for await (const chunk of res.body) bytes += (chunk as Buffer).byteLength
      if (res.statusCode !== 200 || bytes !== settings.distinctBlobBytes) throw new Error(`${digest}: status ${res.statusCode}, ${bytes} of ${settings.distinctBlobBytes} bytes`)
    }))
    await sample()
    signal.throwIfAborted()
    const result: DistinctTargetResult = { ...outcome, rssPeak }
    log(`distinct: ${target}: ${result.clientsOk}/${result.clients} clients ok in ${result.wallS.toFixed(1)} s; peak RSS ${(rssPeak / 2 ** 20).toFixed(0)} MiB`)
    return result
  } finally {
    await cleanups.run()
  }
}
