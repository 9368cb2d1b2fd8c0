import { createHash } from 'node:crypto'
import { stat, readFile } from 'node:fs/promises'
import bcrypt from 'bcryptjs'
import type { Logger } from 'pino'
import { ConfigError } from '../config/config-error.js'
import { networkList } from '../config/network-list.js'
import type { PrefixMap } from '../http/ip-address.js'

/** Why a client was not let in (the metric's `reason`). */
export type AuthFailure = 'missing' | 'malformed' | 'unknown-user' | 'wrong-password'

export type AuthResult = { readonly ok: true, readonly user?: string } | { readonly ok: false, readonly reason: AuthFailure }

export interface ClientAuthOptions {
  /** htpasswd file with bcrypt entries (`htpasswd -B`), read again when it changes. */
  readonly htpasswd?: string
  /** Clients from these networks need no credentials. */
  readonly allowCidrs?: readonly string[]
  readonly logger: Logger
  /** How long a verified user:password pair is remembered (bcrypt costs ~0.1 s a check); default 5 min. */
  readonly cacheMs?: number
  readonly now?: () => number
}

interface Entries { readonly mtimeMs: number, readonly size: number, readonly users: ReadonlyMap<string, string> }

const BCRYPT = /^\$2[aby]\$\d{2}\$[./A-Za-z0-9]{53}$/

/**
 * Who may use the mirror role: clients from `allowCidrs`, and clients presenting HTTP Basic credentials that
 * match the htpasswd file (bcrypt entries, as Distribution and Zot read them). The file is re-read when its
 * size or time changes (checked at most once a second); a file that cannot be read keeps the last good one.
 */
export class ClientAuth {
  readonly #o: ClientAuthOptions
  readonly #allowed: PrefixMap<true>
  readonly #verified = new Map<string, number>()
  #entries: Entries | undefined
  #checkedAt = 0
  #reloading: Promise<void> | undefined

  private constructor (o: ClientAuthOptions) {
    this.#o = o
    this.#allowed = networkList('auth.allowCidrs', o.allowCidrs ?? [])
  }

  static async open (o: ClientAuthOptions): Promise<ClientAuth> {
    const auth = new ClientAuth(o)
    if (o.htpasswd !== undefined) {
      auth.#entries = await readHtpasswd(o.htpasswd, o.logger)
      auth.#checkedAt = (o.now ?? Date.now)()
    }
    return auth
  }

  /** Admits the client at `address` with the request's `Authorization` header, or says why not. */
  async check (address: string | undefined, authorization: string | undefined): Promise<AuthResult> {
    if (address !== undefined && this.#allowed.match(address) === true) return { ok: true }
    if (this.#o.htpasswd === undefined) return { ok: false, reason: 'missing' }
    if (authorization === undefined || authorization === '') return { ok: false, reason: 'missing' }
    const m = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(authorization)
    const decoded = m?.[1] === undefined ? undefined : Buffer.from(m[1], 'base64').toString('utf8')
    const colon = decoded?.indexOf(':') ?? -1
    if (decoded === undefined || colon <= 0) return { ok: false, reason: 'malformed' }
    const user = decoded.slice(0, colon)
    const password = decoded.slice(colon + 1)
    await this.#reloadIfChanged()
    const hash = this.#entries?.users.get(user)
    if (hash === undefined) return { ok: false, reason: 'unknown-user' }
    const now = (this.#o.now ?? Date.now)()
    const key = createHash('sha256').update(`${user}\0${password}\0${hash}`).digest('hex')
    if ((this.#verified.get(key) ?? 0) > now) return { ok: true, user }
    if (!await bcrypt.compare(password, hash)) return { ok: false, reason: 'wrong-password' }
    if (this.#verified.size > 1000) this.#verified.clear()
    this.#verified.set(key, now + (this.#o.cacheMs ?? 5 * 60_000))
    return { ok: true, user }
  }

  async #reloadIfChanged (): Promise<void> {
    const file = this.#o.htpasswd
    const now = (this.#o.now ?? Date.now)()
    if (file === undefined || now - this.#checkedAt < 1000) return
    this.#checkedAt = now
    this.#reloading ??= (async () => {
      try {
        const s = await stat(file)
        if (s.mtimeMs === this.#entries?.mtimeMs && s.size === this.#entries.size) return
        this.#entries = await readHtpasswd(file, this.#o.logger)
        this.#verified.clear()
        this.#o.logger.info({ file, users: this.#entries.users.size }, 'htpasswd file read again')
      } catch (err) {
        this.#o.logger.error({ file, err: (err as Error).message }, 'htpasswd file not read again; keeping the last one')
      } finally {
        this.#reloading = undefined
      }
    })()
    await this.#reloading
  }
}

async function readHtpasswd (file: string, logger: Logger): Promise<Entries> {
  let text: string
  let s
  try {
    s = await stat(file)
    text = await readFile(file, 'utf8')
  } catch (err) {
    throw new ConfigError(`auth.htpasswd: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
  }
  const users = new Map<string, string>()
  for (const [i, raw] of text.split('\n').entries()) {
    const line = raw.trim()
    if (line === '' || line.startsWith('#')) continue
    const colon = line.indexOf(':')
    const hash = line.slice(colon + 1)
    if (colon <= 0 || !BCRYPT.test(hash)) {
      logger.warn({ file, line: i + 1 }, 'htpasswd entry skipped: only user:bcrypt lines are read (htpasswd -B)')
      continue
    }
    users.set(line.slice(0, colon), hash)
  }
  return { mtimeMs: s.mtimeMs, size: s.size, users }
}
