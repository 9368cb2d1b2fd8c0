import { Option, type Command } from 'commander'

/**
 * `flotilla precache status`: asks a running agent for `GET /status/precache` and prints it as a table (or
 * the JSON). The HTTP client and the schema are imported inside the action so `flotilla --help` stays fast.
 */

const DEFAULT_AGENT = 'http://127.0.0.1:5000'
const TIMEOUT_MS = 5000
const MAX_STATUS_BYTES = 4 * 1024 * 1024
const MAX_ERROR_BYTES = 64 * 1024

export class PrecacheCommandError extends Error {
  override readonly name = 'PrecacheCommandError'
  constructor (
    readonly code: 'ERR_CLI_OPTION_INVALID' | 'ERR_AGENT_UNREACHABLE' | 'ERR_AGENT_STATUS' | 'ERR_AGENT_ANSWER_INVALID',
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options)
  }
}

interface StatusOptions {
  agent: string
  json?: boolean
}

export function registerPrecache (program: Command): void {
  const precache = program.command('precache')
    .description('images declared in pre-cache sets, pulled onto matching nodes and pinned there')

  precache.command('status')
    .description("print the agent's pre-cache: each set, its images, their phase, pin, digest and last confirmation")
    .addOption(new Option('--agent <url>', "the agent's registry API, reached from this machine (on loopback, or its metricsListen)")
      .env('FLOTILLA_AGENT').default(DEFAULT_AGENT))
    .option('--json', 'print the JSON the agent answered instead of the table')
    .action(async (opts: StatusOptions) => {
      const base = agentUrl(opts.agent)
      const text = await fetchStatusText(base)
      const raw = parseJson(text, base)
      const { precacheStatusSchema } = await import('../precache/precache-status-schema.js')
      const parsed = precacheStatusSchema.safeParse(raw)
      if (!parsed.success) {
        const [first] = parsed.error.issues
        const more = parsed.error.issues.length > 1 ? ` (and ${parsed.error.issues.length - 1} more)` : ''
        const where = first === undefined || first.path.length === 0 ? '' : `${formatPath(first.path)}: `
        throw new PrecacheCommandError('ERR_AGENT_ANSWER_INVALID',
          `the agent at ${base} answered with JSON that is not a pre-cache status (an agent of another version?): ${where}${oneLine(first?.message ?? 'invalid')}${more}`)
      }
      if (opts.json === true) {
        // What the agent said, keys it has and this CLI does not know included.
        process.stdout.write(`${JSON.stringify(raw, null, 2)}\n`)
        return
      }
      const { formatPrecacheStatus } = await import('./precache-table.js')
      process.stdout.write(formatPrecacheStatus(parsed.data, new Date()))
    })
}

/** The agent's base URL without a trailing slash; anything but http(s) is refused before a request is made. */
function agentUrl (text: string): string {
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

/** GET /status/precache, the whole exchange bounded by TIMEOUT_MS; a non-200 answer becomes its OCI error's message. */
async function fetchStatusText (base: string): Promise<string> {
  const [{ Agent, request }, { readLimited }] = await Promise.all([import('undici'), import('../http/read-limited.js')])
  const url = `${base}/status/precache`
  const signal = AbortSignal.timeout(TIMEOUT_MS)
  const dispatcher = new Agent({ connect: { timeout: TIMEOUT_MS } })
  try {
    const res = await request(url, { dispatcher, method: 'GET', signal, headers: { accept: 'application/json' } })
    if (res.statusCode !== 200) {
      const body = await readLimited(res.body, MAX_ERROR_BYTES)
      const message = body === undefined ? undefined : ociErrorMessage(body.toString('utf8'))
      const hint = res.statusCode === 404 && message === undefined ? ' (an agent without pre-cache status, or not flotilla?)' : ''
      throw new PrecacheCommandError('ERR_AGENT_STATUS',
        `the agent at ${base} answered GET /status/precache with HTTP ${res.statusCode}${message === undefined ? '' : `: ${message}`}${hint}`)
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
      `cannot reach the agent at ${base}: ${describe(err)} (is flotilla serve running there? set --agent or FLOTILLA_AGENT)`, { cause: err })
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
      `the agent at ${base} answered with something that is not JSON (${describe(err)}; it starts ${JSON.stringify(start)})`, { cause: err })
  }
}

/** The messages of an OCI error body (`{"errors":[{"code","message"}]}`), if the body is one. */
function ociErrorMessage (text: string): string | undefined {
  let doc: unknown
  try {
    doc = JSON.parse(text)
  } catch {
    return undefined
  }
  if (typeof doc !== 'object' || doc === null || !Array.isArray((doc as { errors?: unknown }).errors)) return undefined
  const messages = ((doc as { errors: unknown[] }).errors)
    .map((e) => (typeof e === 'object' && e !== null && typeof (e as { message?: unknown }).message === 'string' ? oneLine((e as { message: string }).message) : ''))
    .filter((m) => m !== '')
  return messages.length === 0 ? undefined : messages.join('; ')
}

/** `sets[0].images[2].phase`, as a user would look it up in the JSON. */
function formatPath (path: ReadonlyArray<PropertyKey>): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : `${i === 0 ? '' : '.'}${String(p)}`)).join('')
}

function describe (err: unknown): string {
  if (err instanceof AggregateError && err.message === '') {
    // A host name with several addresses: each refused connection is one error, all alike.
    return describe(err.errors[0])
  }
  if (!(err instanceof Error)) return oneLine(String(err))
  const code = (err as NodeJS.ErrnoException).code
  return oneLine(code === undefined || err.message.includes(code) ? err.message : `${code}: ${err.message}`)
}

function oneLine (text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f-\u009f]+/g, ' ').replace(/ {2,}/g, ' ').trim()
}
