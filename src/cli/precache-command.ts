import { Option, type Command } from 'commander'
import type { ZodType } from 'zod'
import { describeError, oneLine } from '../errors/one-line.js'
import { ociErrorMessage } from '../oci/index.js'
import type { PrecacheStatus } from '../precache/precache-status.js'

/**
 * `flotilla precache status`: asks a running agent for `GET /status/precache` and prints it as a table (or
 * the JSON). The HTTP client and the schema are imported inside the action so `flotilla --help` stays fast.
 */

export const DEFAULT_AGENT = 'http://127.0.0.1:5000'
const TIMEOUT_MS = 5000
const MAX_STATUS_BYTES = 4 * 1024 * 1024
const MAX_ERROR_BYTES = 64 * 1024

/** Errors of the commands that ask a running agent (`precache status`, `status`). */
export class PrecacheCommandError extends Error {
  override readonly name = 'PrecacheCommandError'
  constructor (
    readonly code: 'ERR_CLI_OPTION_INVALID' | 'ERR_PRECACHE_FAILED' | 'ERR_WAIT_TIMEOUT' | 'ERR_AGENT_UNREACHABLE' | 'ERR_AGENT_STATUS' | 'ERR_AGENT_ANSWER_INVALID',
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options)
  }
}

interface StatusOptions {
  agent: string
  json?: boolean
  wait?: boolean
  timeout?: string
}

export function registerPrecache (program: Command): void {
  const precache = program.command('precache')
    .description('images declared in pre-cache sets, pulled onto matching nodes and pinned there')

  precache.command('status')
    .description("print the agent's pre-cache: each set, its images, their phase, pin, digest and last confirmation")
    .addOption(new Option('--agent <url>', "the agent's registry API, reached from this machine (on loopback, or its metricsListen)")
      .env('FLOTILLA_AGENT').default(DEFAULT_AGENT))
    .option('--json', 'print the JSON the agent answered instead of the table')
    .option('--wait', 'wait until every image of the sets on this node is Ready (exit 1 as soon as one is Failed)')
    .option('--timeout <duration>', 'with --wait: give up after this long (e.g. 90s, 5m)', '5m')
    .action(async (opts: StatusOptions) => {
      const base = agentUrl(opts.agent)
      const { precacheStatusSchema } = await import('../precache/precache-status-schema.js')
      const get = async (): Promise<{ raw: unknown, data: PrecacheStatus }> => await getAgentJson(base, '/status/precache', precacheStatusSchema, 'pre-cache status')
      if (opts.wait === true) {
        await waitForPrecache(async () => (await get()).data, parseTimeout(opts.timeout), base)
        return
      }
      const { raw, data } = await get()
      if (opts.json === true) {
        // What the agent said, keys it has and this CLI does not know included.
        process.stdout.write(`${JSON.stringify(raw, null, 2)}\n`)
        return
      }
      const { formatPrecacheStatus } = await import('./precache-table.js')
      process.stdout.write(formatPrecacheStatus(data, new Date()))
    })
}

const WAIT_POLL_MS = 1000

/**
 * `precache status --wait`: polls until every image of the sets on this node is Ready (a bar on a terminal,
 * a line per change otherwise); an image Failed, or the time up, is an error (exit 1) naming what is not Ready.
 */
async function waitForPrecache (get: () => Promise<PrecacheStatus>, timeoutMs: number, base: string): Promise<void> {
  const { countProgress } = await import('./progress.js')
  const progress = countProgress('pre-cache')
  const deadline = Date.now() + timeoutMs
  try {
    for (;;) {
      const images = (await get()).sets.filter((set) => set.matches).flatMap((set) => set.images.map((image) => ({ set: set.name, image })))
      const ready = images.filter(({ image }) => image.phase === 'Ready').length
      const others = (['Pulling', 'Pending', 'Failed'] as const).map((phase) => [phase, images.filter(({ image }) => image.phase === phase).length] as const)
      progress.update(ready, images.length, others.filter(([, n]) => n > 0).map(([phase, n]) => `${n} ${phase}`).join(', '))
      const failed = images.filter(({ image }) => image.phase === 'Failed')
      if (failed.length > 0) {
        throw new PrecacheCommandError('ERR_PRECACHE_FAILED', `pre-cache on ${base}: ${failed.map(({ set, image }) => `${set}/${oneLine(image.ref)} Failed${image.error === null ? '' : `: ${oneLine(image.error)}`}`).join('; ')}`)
      }
      if (ready === images.length) {
        progress.stop()
        process.stdout.write(images.length === 0 ? 'no pre-cache images on this node\n' : `all ${images.length} pre-cache image${images.length === 1 ? '' : 's'} Ready\n`)
        return
      }
      if (Date.now() + WAIT_POLL_MS > deadline) {
        const waiting = images.filter(({ image }) => image.phase !== 'Ready').map(({ set, image }) => `${set}/${oneLine(image.ref)} ${image.phase}`)
        throw new PrecacheCommandError('ERR_WAIT_TIMEOUT', `pre-cache on ${base} not Ready after ${timeoutMs / 1000} s: ${waiting.join('; ')}`)
      }
      await new Promise((resolve) => setTimeout(resolve, WAIT_POLL_MS))
    }
  } finally {
    progress.stop()
  }
}

/** `90s`, `5m`, `1h`, `1500ms`, or seconds as a bare number. */
function parseTimeout (text: string | undefined): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text ?? '5m')
  const ms = m === null ? NaN : Number(m[1]) * ({ ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] ?? 's'] ?? 1000)
  if (!(ms > 0)) throw new PrecacheCommandError('ERR_CLI_OPTION_INVALID', `--timeout ${JSON.stringify(text)}: expected a duration such as 90s or 5m`)
  return ms
}

/** The agent's base URL without a trailing slash; anything but http(s) is refused before a request is made. */
export function agentUrl (text: string): string {
  let url: URL | undefined
  try {
    url = new URL(text)
  } catch {
    url = undefined
  }
  if (url === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
    throw new PrecacheCommandError('ERR_CLI_OPTION_INVALID', `--agent ${JSON.stringify(text)}: expected the agent's http(s) URL, e.g. ${DEFAULT_AGENT}`)
  }
  return text.replace(/\/+$/, '')
}

/**
 * GET `path` of the agent and its JSON checked against `schema` (an agent of another version gets a clear
 * error, naming the first wrong field): `raw` is what it said, `data` what this CLI reads. Shared by the
 * CLI's status commands.
 */
export async function getAgentJson<T> (base: string, path: string, schema: ZodType<T>, what: string): Promise<{ raw: unknown, data: T }> {
  const raw = parseJson(await fetchStatusText(base, path, what), base)
  const parsed = schema.safeParse(raw)
  if (!parsed.success) {
    const [first] = parsed.error.issues
    const more = parsed.error.issues.length > 1 ? ` (and ${parsed.error.issues.length - 1} more)` : ''
    const where = first === undefined || first.path.length === 0 ? '' : `${formatPath(first.path)}: `
    throw new PrecacheCommandError('ERR_AGENT_ANSWER_INVALID',
      `the agent at ${base} answered with JSON that is not a ${what} (an agent of another version?): ${where}${oneLine(first?.message ?? 'invalid')}${more}`)
  }
  return { raw, data: parsed.data }
}

/** GET `path`, the whole exchange bounded by TIMEOUT_MS; a non-200 answer becomes its OCI error's message. */
async function fetchStatusText (base: string, path: string, what: string): Promise<string> {
  const [{ Agent, request }, { readLimited }] = await Promise.all([import('undici'), import('../http/read-limited.js')])
  const url = `${base}${path}`
  const signal = AbortSignal.timeout(TIMEOUT_MS)
  const dispatcher = new Agent({ connect: { timeout: TIMEOUT_MS } })
  try {
    const res = await request(url, { dispatcher, method: 'GET', signal, headers: { accept: 'application/json' } })
    if (res.statusCode !== 200) {
      const body = await readLimited(res.body, MAX_ERROR_BYTES)
      const message = body === undefined ? undefined : ociErrorMessage(body.toString('utf8'))
      const hint = res.statusCode === 404 && message === undefined ? ` (an agent without ${what}, or not flotilla?)` : ''
      throw new PrecacheCommandError('ERR_AGENT_STATUS',
        `the agent at ${base} answered GET ${path} with HTTP ${res.statusCode}${message === undefined ? '' : `: ${message}`}${hint}`)
    }
    const body = await readLimited(res.body, MAX_STATUS_BYTES)
    if (body === undefined) throw new PrecacheCommandError('ERR_AGENT_ANSWER_INVALID', `the agent at ${base} answered with more than ${MAX_STATUS_BYTES / 1024 / 1024} MiB`)
    return body.toString('utf8')
  } catch (err) {
    if (err instanceof PrecacheCommandError) throw err
    if (signal.aborted) {
      throw new PrecacheCommandError('ERR_AGENT_UNREACHABLE', `the agent at ${base} did not answer within ${TIMEOUT_MS / 1000} s`, { cause: err })
    }
    throw new PrecacheCommandError('ERR_AGENT_UNREACHABLE',
      `cannot reach the agent at ${base}: ${describeError(err)} (is flotilla serve running there? set --agent or FLOTILLA_AGENT)`, { cause: err })
  } finally {
    // Not close(): nothing is left to send, and a kept-alive socket must not hold the process open.
    void dispatcher.destroy().catch(() => { /* already gone */ })
  }
}

function parseJson (text: string, base: string): unknown {
  try {
    return JSON.parse(text)
  } catch (err) {
    const start = oneLine(text).slice(0, 40)
    throw new PrecacheCommandError('ERR_AGENT_ANSWER_INVALID',
      `the agent at ${base} answered with something that is not JSON (${describeError(err)}; it starts ${JSON.stringify(start)})`, { cause: err })
  }
}

/** `sets[0].images[2].phase`, as a user would look it up in the JSON. */
function formatPath (path: ReadonlyArray<PropertyKey>): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : `${i === 0 ? '' : '.'}${String(p)}`)).join('')
}

