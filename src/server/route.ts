import type { IncomingMessage, ServerResponse } from 'node:http'
import type { RequestTarget } from '../http/request-target.js'
import type { RequestKind, RequestResult } from '../metrics/metrics.js'

/** One request as a route sees it, its target parsed strictly and once (parseRequestTarget). */
export interface RouteRequest {
  readonly req: IncomingMessage
  readonly res: ServerResponse
  readonly target: RequestTarget
  readonly method: string
  /** Aborted when the client goes away before the response is finished. */
  readonly signal: AbortSignal
}

/** What a counted request is recorded as; a route fills it in as it learns, and a failure keeps what it got to. */
export interface RequestTally {
  kind: RequestKind
  registry: string
  result: RequestResult
}

/**
 * An entry of a handler's route table: the first route that matches answers, and whatever it throws becomes
 * OCI JSON in sendError, the one error path.
 */
export interface Route {
  /** Whether requests it answers are counted in the request metrics and logged (the pull API, not probes). */
  readonly isCounted: boolean
  matches (target: RequestTarget, req: IncomingMessage): boolean
  serve (request: RouteRequest, tally: RequestTally): Promise<void>
}
