import { execFile } from 'node:child_process'
import { performance } from 'node:perf_hooks'
import { request, type Dispatcher } from 'undici'

export interface Download {
  readonly status: number
  /** Body bytes received. */
  readonly bytes: number
  /** From sending the request to the last body byte. */
  readonly ms: number
}

/** GETs a URL, counting the body bytes without looking at them. */
export type Downloader = (url: string, signal: AbortSignal) => Promise<Download>

/**
 * In-process client: counts the body bytes, no hashing. On a 2-core machine it tops out near 1 GB/s
 * (it shares the CPU with the server under test), so it is used where the link, not the client, is the
 * limit (concurrent clients).
 */
export function undiciDownloader (dispatcher: Dispatcher): Downloader {
  return async (url, signal) => {
    const started = performance.now()
    const res = await request(url, { method: 'GET', dispatcher, signal })
    let bytes = 0
    for await (const chunk of res.body) bytes += (chunk as Buffer).byteLength
    return { status: res.statusCode, bytes, ms: performance.now() - started }
  }
}

/**
 * curl writing to /dev/null: the cheapest client there is (about twice the throughput of a Node client
 * here), so single-stream figures are the server's. Times are curl's own (request to last byte).
 */
export function curlDownloader (maxTimeS = 120): Downloader {
  return async (url, signal) => await new Promise<Download>((resolve, reject) => {
    execFile('curl', ['-sS', '-o', '/dev/null', '--max-time', String(maxTimeS), '-w', '%{http_code} %{size_download} %{time_total}', url],
      { signal, timeout: (maxTimeS + 5) * 1000 }, (err, stdout, stderr) => {
        if (err !== null) {
          reject(new Error(`curl ${url}: ${err.message.split('\n')[0] ?? ''} ${stderr.trim()}`, { cause: err }))
          return
        }
        const [status, bytes, seconds] = stdout.trim().split(' ').map(Number)
        if (status === undefined || bytes === undefined || seconds === undefined || [status, bytes, seconds].some(Number.isNaN)) {
          reject(new Error(`curl ${url}: unexpected output ${JSON.stringify(stdout)}`))
          return
        }
        resolve({ status, bytes, ms: seconds * 1000 })
      })
  })
}

/** Whether curl is on the PATH. */
export async function hasCurl (): Promise<boolean> {
  return await new Promise((resolve) => {
    execFile('curl', ['--version'], { timeout: 5000 }, (err) => resolve(err === null))
  })
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
