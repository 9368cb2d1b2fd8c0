import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'

export type RequestKind = 'manifest' | 'blob' | 'tags' | 'referrers' | 'other'
export type RequestResult = 'hit' | 'miss' | 'upstream' | 'peer' | 'stale' | 'error'

/** Every metric flotilla exports, on its own registry (no global state). */
export class Metrics {
  readonly registry = new Registry()
  readonly requests = new Counter({
    name: 'flotilla_requests_total', help: 'Registry API requests by upstream registry, kind and result',
    labelNames: ['registry', 'kind', 'result'] as const, registers: [this.registry],
  })
  readonly servedBytes = new Counter({
    name: 'flotilla_served_bytes_total', help: 'Body bytes sent to clients, by where they came from',
    labelNames: ['source'] as const, registers: [this.registry],
  })
  readonly upstreamBytes = new Counter({
    name: 'flotilla_upstream_bytes_total', help: 'Blob bytes received from upstream registries',
    labelNames: ['registry'] as const, registers: [this.registry],
  })
  readonly upstreamRequests = new Counter({
    name: 'flotilla_upstream_requests_total', help: 'Requests sent upstream by kind',
    labelNames: ['registry', 'kind'] as const, registers: [this.registry],
  })
  readonly inflight = new Gauge({
    name: 'flotilla_inflight_fetches', help: 'Blob downloads in progress', registers: [this.registry],
  })
  readonly downloadMemory = new Gauge({
    name: 'flotilla_download_memory_bytes', help: 'Bytes running downloads hold in memory for their readers (bounded by downloadMemory)', registers: [this.registry],
  })
  readonly storeBytes = new Gauge({
    name: 'flotilla_store_bytes', help: 'Bytes held in the local blob store', registers: [this.registry],
  })
  readonly storeOwnBytes = new Gauge({
    name: 'flotilla_store_own_bytes', help: 'Bytes of the local store held in its own copies (what counts against the budget), at the last eviction pass',
    registers: [this.registry],
  })
  readonly storeLinkedBytes = new Gauge({
    name: 'flotilla_store_linked_bytes', help: "Bytes of the local store held as hard links to containerd's files (no disk of its own), at the last eviction pass",
    registers: [this.registry],
  })
  readonly storeBudgetBytes = new Gauge({
    name: 'flotilla_store_budget_bytes', help: 'Bytes the local blob store may hold (store.maxBytes, or what store.maxDiskPercent leaves)', registers: [this.registry],
  })
  readonly storeEvictions = new Counter({
    name: 'flotilla_store_evictions_total', help: 'Blobs evicted from the local store to keep it within its budget',
    labelNames: ['reason'] as const, registers: [this.registry],
  })
  readonly storeEvictedBytes = new Counter({
    name: 'flotilla_store_evicted_bytes_total', help: 'Bytes evicted from the local store to keep it within its budget',
    labelNames: ['reason'] as const, registers: [this.registry],
  })
  readonly staleServed = new Counter({
    name: 'flotilla_stale_tags_served_total', help: 'Tags answered from the local index because the upstream failed',
    labelNames: ['registry'] as const, registers: [this.registry],
  })
  readonly staleAge = new Gauge({
    name: 'flotilla_stale_tag_age_seconds', help: 'Age of the last tag served stale (since last upstream confirmation)',
    labelNames: ['registry'] as const, registers: [this.registry],
  })
  readonly sentToHolder = new Counter({
    name: 'flotilla_p2p_sent_to_holder_total', help: 'Blob GETs of this node\'s clients answered with a 307 to a peer that holds the blob, or while none does to its owner (p2p.sendToHolders)', registers: [this.registry],
  })

  readonly ownerRedirects = new Counter({
    name: 'flotilla_p2p_owner_redirects_total', help: 'Peers this owner sent to another peer streaming the blob (fan-out limit reached)', registers: [this.registry],
  })

  readonly upstreamEndpointRequests = new Counter({
    name: 'flotilla_upstream_endpoint_requests_total', help: 'Upstream requests by the source that answered or failed them (a mirror\'s URL, or endpoint) and result (ok, failed, not-found)',
    labelNames: ['endpoint', 'registry', 'result'] as const, registers: [this.registry],
  })
  readonly upstreamEndpointBytes = new Counter({
    name: 'flotilla_upstream_endpoint_bytes_total', help: 'Blob bytes received from each upstream source (a mirror\'s URL, or endpoint)',
    labelNames: ['endpoint', 'registry'] as const, registers: [this.registry],
  })
  readonly upstreamCircuitOpen = new Gauge({
    name: 'flotilla_upstream_circuit_open', help: 'Whether an upstream endpoint or mirror is being passed over (its circuit open or half-open): 1, else 0',
    labelNames: ['registry', 'endpoint'] as const, registers: [this.registry],
  })
  readonly redirects = new Counter({
    name: 'flotilla_redirects_total', help: 'Blob requests the redirector sent to a region, by region',
    labelNames: ['region'] as const, registers: [this.registry],
  })
  readonly redirectFallbacks = new Counter({
    name: 'flotilla_redirect_fallbacks_total', help: 'Blob requests the redirector sent to the origin, by reason (no-region, region-lacks, region-unavailable)',
    labelNames: ['reason'] as const, registers: [this.registry],
  })
  readonly authFailures = new Counter({
    name: 'flotilla_auth_failures_total', help: 'Clients refused by the mirror role\'s authentication, by reason (missing, malformed, unknown-user, wrong-password)',
    labelNames: ['reason'] as const, registers: [this.registry],
  })
  readonly precacheImages = new Gauge({
    name: 'flotilla_precache_images', help: 'Pre-cached images by set and phase (Pending, Pulling, Ready, Failed)',
    labelNames: ['set', 'phase'] as const, registers: [this.registry],
  })

  readonly peers = new Gauge({
    name: 'flotilla_p2p_peers', help: 'Peers this agent is connected to', registers: [this.registry],
  })
  readonly duration = new Histogram({
    name: 'flotilla_request_duration_seconds', help: 'Request duration, from the request to the end of its response (for a blob, the whole transfer)',
    labelNames: ['kind'] as const, buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  })

  constructor (options: { defaultMetrics?: boolean } = {}) {
    if (options.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry, prefix: 'flotilla_' })
  }
}
