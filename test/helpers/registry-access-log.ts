import { readFile } from 'node:fs/promises'

/** One request in Distribution's access log (gorilla's combined format). */
export interface AccessLogEntry {
  /** The client's address (no port). */
  client: string
  /** As logged, e.g. `01/Dec/2026:18:00:00 +0000`. */
  time: string
  method: string
  /** Path without the query string. */
  path: string
  status: number
  /** Body bytes sent. */
  bytes: number
  userAgent: string
}

const LINE = /^(\S+) \S+ \S+ \[([^\]]+)\] "(\S+) (\S+) HTTP\/[\d.]+" (\d{3}) (\d+|-) "[^"]*" "([^"]*)"/

/**
 * The requests Distribution (`docker-registry serve` with `log.accesslog.disabled: false`) logged to `file`,
 * in order; other lines (its own log) are skipped. A missing file reads as no requests.
 */
export async function readAccessLog (file: string): Promise<AccessLogEntry[]> {
  const text = await readFile(file, 'utf8').catch(() => '')
  const out: AccessLogEntry[] = []
  for (const line of text.split('\n')) {
    const m = LINE.exec(line)
    if (m === null) continue
    out.push({
      client: m[1] ?? '',
      time: m[2] ?? '',
      method: m[3] ?? '',
      path: (m[4] ?? '').split('?')[0] ?? '',
      status: Number(m[5]),
      bytes: m[6] === '-' ? 0 : Number(m[6]),
      userAgent: m[7] ?? '',
    })
  }
  return out
}

/** `/v2/<repo>/blobs/<digest>` → the digest; undefined for other paths (manifests, uploads, /v2/). */
export function blobDigestOf (path: string): string | undefined {
  const m = /^\/v2\/.+\/blobs\/(sha256:[a-f0-9]{64})$/.exec(path)
  return m?.[1]
}
