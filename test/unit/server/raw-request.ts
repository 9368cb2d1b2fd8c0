import { connect } from 'node:net'

export interface RawResponse {
  readonly status: number
  readonly head: string
  readonly body: string
}

/**
 * Sends `METHOD target HTTP/1.1` as written, over a plain socket: HTTP clients normalise targets (`..`,
 * `\`, `//`) before sending, which is exactly what these tests must not let happen.
 */
export async function rawRequest (host: string, port: number, target: string, options: { method?: string, headers?: Record<string, string>, timeoutMs?: number } = {}): Promise<RawResponse> {
  const headers = Object.entries({ host: `${host}:${port}`, connection: 'close', ...options.headers }).map(([k, v]) => `${k}: ${v}\r\n`).join('')
  return await new Promise((resolve, reject) => {
    const socket = connect({ host, port })
    const chunks: Buffer[] = []
    socket.setTimeout(options.timeoutMs ?? 10_000, () => socket.destroy(new Error(`no answer to ${target.slice(0, 80)} within the bound`)))
    socket.on('connect', () => socket.write(`${options.method ?? 'GET'} ${target} HTTP/1.1\r\n${headers}\r\n`))
    socket.on('data', (c: Buffer) => chunks.push(c))
    socket.on('error', reject)
    socket.on('end', () => {
      const text = Buffer.concat(chunks).toString('latin1')
      const split = text.indexOf('\r\n\r\n')
      const head = split === -1 ? text : text.slice(0, split)
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0), head, body: split === -1 ? '' : text.slice(split + 4) })
    })
  })
}

/** The first OCI error code in a body, or undefined if the body is not an OCI error document. */
export function ociCode (body: string): string | undefined {
  try {
    return (JSON.parse(body) as { errors?: Array<{ code?: string }> }).errors?.[0]?.code
  } catch {
    return undefined
  }
}
