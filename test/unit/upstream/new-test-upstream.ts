import { pino } from 'pino'
import { UndiciUpstream, type UndiciUpstreamOptions } from '../../../src/upstream/undici-upstream.js'

/** An UndiciUpstream for local test servers: silent, fast retries, every server its own registry. */
export function newTestUpstream (endpoints: readonly string[], options: Partial<UndiciUpstreamOptions> = {}): UndiciUpstream {
  return new UndiciUpstream({
    registries: new Map(endpoints.map((endpoint) => [new URL(endpoint).host, { endpoint }])),
    logger: pino({ level: 'silent' }),
    retryBaseMs: 1,
    ...options,
  })
}
