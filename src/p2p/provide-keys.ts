import type { KadDHT } from '@libp2p/kad-dht'
import type { CID } from 'multiformats/cid'
import { linkSignals } from './channel.js'

export interface ProvideKeysOptions {
  /** Any of these aborting stops the announcements (a caller's signal, the router's shutdown). */
  readonly signals: ReadonlyArray<AbortSignal | undefined>
  /** Bound on announcing one key. */
  readonly timeoutMs: number
  /** Keys announced at once. */
  readonly concurrency: number
}

/** Announces every key to the DHT, a few at a time, each bounded; failures are counted, not thrown. */
export async function provideKeys (dht: KadDHT, cids: readonly CID[], o: ProvideKeysOptions): Promise<{ failed: number, firstError: unknown }> {
  let next = 0
  let failed = 0
  let firstError: unknown
  const isAborted = (): boolean => o.signals.some((s) => s?.aborted === true)
  const worker = async (): Promise<void> => {
    while (next < cids.length && !isAborted()) {
      const cid = cids[next++] as CID
      const bounded = linkSignals(o.signals, o.timeoutMs)
      try {
        for await (const _event of dht.provide(cid, { signal: bounded.signal })) { /* drain */ }
      } catch (err) {
        failed++
        firstError ??= err
      } finally {
        bounded.dispose()
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(o.concurrency, cids.length) }, worker))
  return { failed, firstError }
}
