import autocannon from 'autocannon'

export interface HeadLoadOptions {
  readonly connections: number
  readonly durationS: number
  readonly headers: Readonly<Record<string, string>>
  readonly signal: AbortSignal
}

export interface HeadLoadResult {
  /** Mean completed requests per second over the run. */
  readonly reqPerSec: number
  readonly total: number
  readonly non2xx: number
  readonly errors: number
  readonly timeouts: number
  readonly p50LatencyMs: number
  readonly p99LatencyMs: number
}

/**
 * autocannon's parser (http-parser-js) is not told that a request was HEAD, so it waits for the
 * Content-Length bytes of a body that never comes. Returning true from onHeadersComplete is how
 * http-parser-js is told "no body", exactly as node:http does for HEAD. The handler is installed by the
 * Client constructor after setupClient runs, hence the microtask.
 */
function skipBodies (client: autocannon.Client): void {
  queueMicrotask(() => {
    const key = client.parser.constructor.kOnHeadersComplete
    const original = client.parser[key] as (info: unknown) => unknown
    client.parser[key] = (info: unknown) => {
      original(info)
      return true
    }
  })
}

/** Sends HEAD requests on `connections` keep-alive connections for `durationS` seconds. */
export async function runHeadLoad (url: string, o: HeadLoadOptions): Promise<HeadLoadResult> {
  o.signal.throwIfAborted()
  const instance = autocannon({
    url,
    method: 'HEAD',
    connections: o.connections,
    duration: o.durationS,
    headers: { ...o.headers },
    timeout: 10,
    setupClient: skipBodies,
  })
  const stop = (): void => { instance.stop() }
  o.signal.addEventListener('abort', stop, { once: true })
  try {
    const r = await instance
    o.signal.throwIfAborted()
    return {
      reqPerSec: r.requests.total / r.duration,
      total: r.requests.total,
      non2xx: r.non2xx,
      errors: r.errors,
      timeouts: r.timeouts,
      p50LatencyMs: r.latency.p50,
      p99LatencyMs: r.latency.p99,
    }
  } finally {
    o.signal.removeEventListener('abort', stop)
  }
}
