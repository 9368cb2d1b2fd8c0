import { Agent, createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import { Transform, type TransformCallback } from 'node:stream'
import { pipeline } from 'node:stream/promises'

/**
 * - `pass`: forward everything.
 * - `corrupt-blobs`: forward, but flip bytes in 2xx blob bodies (same length, wrong digest).
 * - `refuse`: the listening socket is closed (connection refused); switching back reopens the same port.
 * - `reset`: accept, then destroy the socket without answering (connection reset / broken response).
 * - `503`: answer every request `503 Service Unavailable` without asking upstream.
 * - `hang`: accept and never answer (until the mode changes or the proxy closes): the "stalled mirror".
 * In `pass` mode a BlobFault can make blob GETs slow: headers delayed, or a body that stalls part way.
 */
export type CountingProxyMode = 'pass' | 'corrupt-blobs' | 'refuse' | 'reset' | '503' | 'hang'

/** A slow upstream, for blob GETs in `pass` mode (a slow registry, not a broken one). */
export interface BlobFault {
  /** Holds the response (headers and all) this long. */
  headersDelayMs?: number
  /** Sends this many body bytes, then nothing more; the connection stays open (until the client gives up). */
  stallAfterBytes?: number
  /** The first blob GET after the fault is set (default), or every one. */
  times?: 'first' | 'all'
}

export interface CountingProxyOptions {
  /** e.g. `http://127.0.0.1:5000` (http only). */
  upstreamUrl: string
  /** Listen port on 127.0.0.1; a free one when omitted. */
  port?: number
  mode?: CountingProxyMode
  blobFault?: BlobFault
}

export interface ProxiedRequest {
  method: string
  /** Path without the query string (`/v2/<repo>/blobs/sha256:…`). */
  path: string
  /** Query string including `?`, or '' (containerd adds `?ns=` for mirrors). */
  search: string
  headers: IncomingMessage['headers']
  mode: CountingProxyMode
  /** Status sent to the client; 0 when the socket was destroyed or the request hung. */
  status: number
  /** Body bytes sent to the client. */
  bytes: number
  /** The blob fault applied to this request, if any. */
  fault?: BlobFault
}

export interface CountingProxy {
  /** `http://127.0.0.1:<port>` */
  readonly url: string
  /** `127.0.0.1:<port>` */
  readonly host: string
  readonly port: number
  readonly mode: CountingProxyMode
  /** Requests seen per path (query string stripped), all methods. */
  readonly counts: Map<string, number>
  /** Every request seen, in arrival order. */
  readonly requests: readonly ProxiedRequest[]
  /** Requests seen for `path`, optionally only those with `method`. */
  count(path: string, method?: string): number
  /** Body bytes sent to clients for `path`. */
  bytes(path: string): number
  /** Body bytes sent to clients for all `/blobs/` paths. */
  totalBlobBytes(): number
  /** Forgets all counts and recorded requests. */
  reset(): void
  setMode(mode: CountingProxyMode): Promise<void>
  /** Sets (or clears) the fault for the next blob GETs. */
  setBlobFault(fault: BlobFault | undefined): void
  close(): Promise<void>
}

const isBlobPath = (path: string): boolean => /^\/v2\/.+\/blobs\/[^/]+$/.test(path)

/** Flips the first byte of every chunk: length unchanged, digest broken. */
class CorruptBytes extends Transform {
  override _transform (chunk: Buffer, _enc: BufferEncoding, callback: TransformCallback): void {
    if (chunk.length > 0) {
      const copy = Buffer.from(chunk)
      copy[0] = (copy[0] ?? 0) ^ 0xff
      callback(null, copy)
    } else {
      callback(null, chunk)
    }
  }
}

/** Passes the first `limit` bytes, then holds everything back without ending: a stalled body. */
class StallAfter extends Transform {
  #left: number
  constructor (limit: number) {
    super()
    this.#left = limit
  }

  override _transform (chunk: Buffer, _enc: BufferEncoding, callback: TransformCallback): void {
    if (this.#left <= 0) return // never calling back: the pipeline stops here
    const n = Math.min(this.#left, chunk.length)
    this.#left -= n
    this.push(n === chunk.length ? chunk : chunk.subarray(0, n))
    if (this.#left > 0) callback()
  }
}

/** Counts bytes flowing through without touching them. */
class ByteCounter extends Transform {
  constructor (private readonly onBytes: (n: number) => void) { super() }
  override _transform (chunk: Buffer, _enc: BufferEncoding, callback: TransformCallback): void {
    this.onBytes(chunk.length)
    callback(null, chunk)
  }
}

/** An in-process streaming reverse proxy that counts what passes and can misbehave on demand. */
export async function startCountingProxy (options: CountingProxyOptions): Promise<CountingProxy> {
  const upstream = new URL(options.upstreamUrl)
  if (upstream.protocol !== 'http:') throw new TypeError(`startCountingProxy: upstreamUrl must be http://, got ${options.upstreamUrl}`)
  let mode: CountingProxyMode = options.mode ?? 'pass'
  let blobFault = options.blobFault
  const counts = new Map<string, number>()
  const byteCounts = new Map<string, number>()
  const requests: ProxiedRequest[] = []
  const sockets = new Set<Socket>()
  const hanging = new Set<ServerResponse>()
  const agent = new Agent({ keepAlive: true, maxSockets: 64 })

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const { pathname, search } = new URL(req.url ?? '/', 'http://proxy.invalid')
    const record: ProxiedRequest = { method: req.method ?? 'GET', path: pathname, search, headers: req.headers, mode, status: 0, bytes: 0 }
    requests.push(record)
    counts.set(pathname, (counts.get(pathname) ?? 0) + 1)
    const addBytes = (n: number): void => {
      record.bytes += n
      byteCounts.set(pathname, (byteCounts.get(pathname) ?? 0) + n)
    }

    switch (mode) {
      case 'reset':
      case 'refuse': // a connection that slipped in just before close
        req.socket.destroy()
        return
      case 'hang':
        hanging.add(res)
        res.once('close', () => hanging.delete(res))
        return
      case '503':
        record.status = 503
        res.writeHead(503, { 'content-type': 'text/plain' }).end('counting-proxy: down\n')
        return
      case 'pass':
      case 'corrupt-blobs':
        break
    }

    const isCorrupting = mode === 'corrupt-blobs' && isBlobPath(pathname)
    const fault = mode === 'pass' && req.method === 'GET' && isBlobPath(pathname) ? blobFault : undefined
    if (fault !== undefined) {
      record.fault = fault
      if (fault.times !== 'all') blobFault = undefined
    }
    const forward = (): void => {
      const upstreamReq = httpRequest({
        agent,
        protocol: upstream.protocol,
        hostname: upstream.hostname,
        port: upstream.port,
        method: req.method,
        path: req.url,
        // The client's Host is kept so Distribution's Location headers point back through the proxy.
        headers: req.headers,
      })
      upstreamReq.once('response', (upRes) => {
        record.status = upRes.statusCode ?? 0
        res.writeHead(upRes.statusCode ?? 502, upRes.statusMessage, upRes.headers)
        const isOk = (upRes.statusCode ?? 0) >= 200 && (upRes.statusCode ?? 0) < 300
        const counter = new ByteCounter(addBytes)
        const piped = isCorrupting && isOk
          ? pipeline(upRes, new CorruptBytes(), counter, res)
          : fault?.stallAfterBytes !== undefined && isOk
            ? pipeline(upRes, new StallAfter(fault.stallAfterBytes), counter, res)
            : pipeline(upRes, counter, res)
        piped.catch(() => { res.destroy() })
      })
      upstreamReq.once('error', (err) => {
        if (!res.headersSent) {
          record.status = 502
          res.writeHead(502, { 'content-type': 'text/plain' }).end(`counting-proxy: upstream error: ${err.message}\n`)
        } else {
          res.destroy()
        }
      })
      res.once('close', () => { if (!res.writableFinished) upstreamReq.destroy() })
      req.pipe(upstreamReq)
    }
    if (fault?.headersDelayMs === undefined) {
      forward()
      return
    }
    const timer = setTimeout(forward, fault.headersDelayMs)
    res.once('close', () => clearTimeout(timer))
  }

  const server = createServer(handle)
  server.on('connection', (socket) => {
    sockets.add(socket)
    socket.once('close', () => sockets.delete(socket))
  })

  const listen = async (port: number): Promise<number> => await new Promise<number>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, '127.0.0.1', () => {
      server.removeListener('error', reject)
      const address = server.address()
      if (address === null || typeof address === 'string') reject(new Error('counting-proxy: no TCP address'))
      else resolve(address.port)
    })
  })
  const unlisten = async (): Promise<void> => {
    if (!server.listening) return
    const closed = new Promise<void>((resolve) => server.close(() => resolve()))
    for (const res of hanging) res.destroy()
    for (const socket of sockets) socket.destroy()
    await closed
  }

  const port = await listen(options.port ?? 0)
  if (mode === 'refuse') await unlisten()
  let isClosed = false

  return {
    url: `http://127.0.0.1:${port}`,
    host: `127.0.0.1:${port}`,
    port,
    get mode () { return mode },
    counts,
    requests,
    count: (path, method) => method === undefined
      ? counts.get(path) ?? 0
      : requests.filter((r) => r.path === path && r.method === method).length,
    bytes: (path) => byteCounts.get(path) ?? 0,
    totalBlobBytes: () => {
      let total = 0
      for (const [path, n] of byteCounts) if (isBlobPath(path)) total += n
      return total
    },
    reset () {
      counts.clear()
      byteCounts.clear()
      requests.length = 0
    },
    setBlobFault (fault) {
      blobFault = fault
    },
    async setMode (next) {
      if (isClosed) throw new Error('counting-proxy: closed')
      const previous = mode
      mode = next
      if (previous === 'hang' && next !== 'hang') for (const res of hanging) res.destroy()
      if (next === 'refuse') await unlisten()
      else if (!server.listening) await listen(port)
    },
    async close () {
      if (isClosed) return
      isClosed = true
      await unlisten()
      agent.destroy()
    },
  }
}
