import type { Counter, Gauge } from 'prom-client'
import type { Metrics } from '../metrics/metrics.js'
import type { StatusReadings } from './node-status-source.js'

/**
 * The status's store and traffic facts, read from the metrics the rest of flotilla already keeps (so the page
 * and the scrape never disagree). `storeBytes` is asked fresh; the budget is null until a pass has set it.
 */
export function metricsReadings (metrics: Metrics, storeBytes: () => Promise<number>): () => Promise<StatusReadings> {
  return async () => {
    const [bytes, own, linked, budget, evictions, evicted, served, upstream] = await Promise.all([
      storeBytes(), sum(metrics.storeOwnBytes), sum(metrics.storeLinkedBytes), sum(metrics.storeBudgetBytes),
      sum(metrics.storeEvictions), sum(metrics.storeEvictedBytes), byLabel(metrics.servedBytes, 'source'), sum(metrics.upstreamBytes),
    ])
    return {
      store: {
        bytes,
        // Gauges set by the eviction pass read 0 before it ran: unknown, not empty.
        ownBytes: own === 0 && linked === 0 ? null : own,
        linkedBytes: own === 0 && linked === 0 ? null : linked,
        budgetBytes: budget === 0 ? null : budget,
        evictions,
        evictedBytes: evicted,
      },
      servedBytes: served,
      upstreamBytes: upstream,
    }
  }
}

type Metric = Counter<string> | Gauge<string>

async function sum (metric: Metric): Promise<number> {
  return (await metric.get()).values.reduce((total, v) => total + v.value, 0)
}

async function byLabel (metric: Metric, label: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {}
  for (const v of (await metric.get()).values) {
    const key = String(v.labels[label] ?? '-')
    out[key] = (out[key] ?? 0) + v.value
  }
  return out
}
