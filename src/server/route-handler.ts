import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Logger } from 'pino'
import { parseRequestTarget } from '../http/request-target.js'
import type { Metrics } from '../metrics/metrics.js'
import { OciError } from '../oci/index.js'
import type { RequestTally, Route } from './route.js'
import { ociErrorFor } from './oci-error-for.js'
import { sendError } from './send-error.js'

export type Handler = (req: IncomingMessage, res: ServerResponse) => void

/**
 * Dispatches each request through a route table: parses the target, lets the first matching route answer,
 * turns what it throws into OCI JSON, and counts the routes that are counted.
 */
export function createRouteHandler (routes: readonly Route[], o: { readonly metrics: Metrics, readonly logger: Logger }): Handler {
  return (req, res) => {
    const started = process.hrtime.bigint()
    const controller = new AbortController()
    res.on('close', () => { if (!res.writableFinished) controller.abort(new Error('client went away')) })
    const tally: RequestTally = { kind: 'other', registry: '-', result: 'error' }
    // Unknown until the target parses: a target refused as such is not counted.
    let route: Route | undefined
    const done = (): void => {
      if (route?.isCounted !== true) return
      const { kind, registry, result } = tally
      o.metrics.requests.inc({ registry, kind, result })
      o.metrics.duration.observe({ kind }, Number(process.hrtime.bigint() - started) / 1e9)
      o.logger.debug({ method: req.method, url: req.url, status: res.statusCode, kind, registry, result, ms: Number(process.hrtime.bigint() - started) / 1e6 }, 'request')
    }
    const run = async (): Promise<void> => {
      const target = parseRequestTarget(req.url ?? '')
      route = routes.find((r) => r.matches(target, req))
      if (route === undefined) throw new OciError('NAME_UNKNOWN', 'no such endpoint')
      await route.serve({ req, res, target, method: req.method ?? 'GET', signal: controller.signal }, tally)
    }
    run().then(done, (err: unknown) => {
      sendError(res, err, tally.kind, req.method === 'HEAD', o.logger)
      tally.result = ociErrorFor(err, tally.kind)?.status === 404 ? 'miss' : 'error'
      done()
    })
  }
}
