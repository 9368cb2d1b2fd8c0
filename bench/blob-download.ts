import { performance } from 'node:perf_hooks'
import { request, type Dispatcher } from 'undici'

export interface Download {
  readonly status: number
  /** Body bytes received. */
  readonly bytes: number
  /** From sending the request to the last body byte. */
  readonly ms: number
}

/**
 * GETs `url` and counts the body bytes without looking at them: no hashing on the client, so the figure is
 * the server's (and the link's), not ours.
 */
export async function downloadBlob (url: string, dispatcher: Dispatcher, signal: AbortSignal): Promise<Download> {
  const started = performance.now()
  const res = await request(url, { method: 'GET', dispatcher, signal })
  let bytes = 0
  for await (const chunk of res.body) bytes += (chunk as Buffer).byteLength
  return { status: res.statusCode, bytes, ms: performance.now() - started }
}

/** Decimal megabytes per second. */
export function megabytesPerSecond (bytes: number, ms: number): number {
  return bytes / 1e6 / (ms / 1000)
}

export function median (values: readonly number[]): number {
  if (values.length === 0) return NaN
  const sorted = [...values].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[mid] ?? NaN : ((sorted[mid - 1] ?? NaN) + (sorted[mid] ?? NaN)) / 2
}
