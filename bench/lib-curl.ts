// curl as the benchmark client: it writes bodies to /dev/null and only counts bytes, so on a small
// machine it takes the least CPU from the server under test.
import { runCommand } from '../test/helpers/run-command.js'

export interface CurlResult {
  readonly url: string
  readonly status: number
  /** Body bytes received. */
  readonly bytes: number
  /** curl's own time from start to the last byte. */
  readonly ms: number
}

export interface CurlOptions {
  /** Run inside this network namespace. */
  readonly netns?: string
  /** Per transfer; default 120 s. */
  readonly maxTimeS?: number
  readonly headers?: readonly string[]
  /** Follow redirects (`-L`), as containerd does; the figures are then those of the last response. */
  readonly follow?: boolean
}

/** GETs each URL in turn on one connection (one curl process), bodies to /dev/null. */
export async function curlGet (urls: readonly string[], o: CurlOptions = {}): Promise<CurlResult[]> {
  const maxTimeS = o.maxTimeS ?? 120
  const args = ['-sS', ...(o.follow === true ? ['-L'] : []), '--max-time', String(maxTimeS), '-w', '%{http_code} %{size_download} %{time_total}\\n',
    ...(o.headers ?? []).flatMap((h) => ['-H', h])]
  for (const url of urls) args.push('-o', '/dev/null', url)
  const [cmd, argv] = o.netns === undefined ? ['curl', args] : ['ip', ['netns', 'exec', o.netns, 'curl', ...args]]
  const r = await runCommand(cmd, argv, { timeoutMs: (maxTimeS * urls.length + 10) * 1000 })
  if (r.code !== 0 || r.isTimedOut) throw new Error(`curl ${urls.join(' ')}: exit ${String(r.code)}${r.isTimedOut ? ' (timed out)' : ''}: ${r.stderr.trim()}`)
  const lines = r.stdout.trim().split('\n')
  if (lines.length !== urls.length) throw new Error(`curl: expected ${urls.length} result lines, got ${JSON.stringify(r.stdout)}`)
  return lines.map((line, i) => {
    const [status, bytes, seconds] = line.split(' ').map(Number)
    if (status === undefined || bytes === undefined || seconds === undefined || [status, bytes, seconds].some(Number.isNaN)) {
      throw new Error(`curl: unexpected output ${JSON.stringify(line)}`)
    }
    return { url: urls[i] ?? '', status, bytes, ms: seconds * 1000 }
  })
}

/** Decimal megabytes per second. */
export function megabytesPerSecond (bytes: number, ms: number): number {
  return bytes / 1e6 / (ms / 1000)
}
