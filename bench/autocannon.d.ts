// The subset of autocannon 9's programmatic API the bench uses (the package ships no types and
// @types/autocannon is not a dependency).
declare module 'autocannon' {
  import type { EventEmitter } from 'node:events'

  namespace autocannon {
    interface Histogram {
      average: number
      mean: number
      stddev: number
      min: number
      max: number
      total: number
      p50: number
      p99: number
    }
    interface Client extends EventEmitter {
      /** http-parser-js parser of this connection. */
      parser: Record<number, unknown> & { constructor: { kOnHeadersComplete: number } }
    }
    interface Options {
      url: string
      connections?: number
      duration?: number
      method?: string
      headers?: Record<string, string>
      timeout?: number
      setupClient?: (client: Client) => void
    }
    interface Result {
      requests: Histogram
      latency: Histogram
      duration: number
      errors: number
      timeouts: number
      non2xx: number
      '2xx': number
    }
    interface Instance extends EventEmitter, PromiseLike<Result> {
      stop (): void
    }
  }

  function autocannon (opts: autocannon.Options): autocannon.Instance

  export = autocannon
}
