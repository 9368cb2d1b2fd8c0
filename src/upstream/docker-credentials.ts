import { readFile } from 'node:fs/promises'
import { FlotillaError } from '../errors/flotilla-error.js'

export interface RegistryCredential {
  readonly username: string
  readonly password: string
}

export class DockerConfigError extends FlotillaError<'ERR_DOCKER_CONFIG_INVALID'> {
  override readonly name = 'DockerConfigError'
  constructor (readonly path: string, reason: string, options?: ErrorOptions) {
    super('ERR_DOCKER_CONFIG_INVALID', `invalid docker config ${path}: ${reason}`, options)
  }
}

/** Every spelling Docker Hub goes by in `auths` keys: `docker login` writes the legacy v1 URL. */
const DOCKER_HUB_ALIASES: ReadonlySet<string> = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io'])

/** `https://index.docker.io/v1/` → `docker.io`; `HTTP://Host:5000/x` → `host:5000`. */
function normalizeRegistry (key: string): string {
  const host = key.trim().replace(/^[a-z][a-z0-9+.-]*:\/\//i, '').split('/')[0]?.toLowerCase() ?? ''
  return DOCKER_HUB_ALIASES.has(host) ? 'docker.io' : host
}

/** Registry credentials as `docker login` stores them, looked up by registry name. */
export class DockerCredentials {
  readonly #byRegistry = new Map<string, RegistryCredential>()

  constructor (entries: Iterable<readonly [string, RegistryCredential]> = []) {
    for (const [registry, credential] of entries) this.#byRegistry.set(normalizeRegistry(registry), credential)
  }

  get size (): number {
    return this.#byRegistry.size
  }

  lookup (registry: string): RegistryCredential | undefined {
    return this.#byRegistry.get(normalizeRegistry(registry))
  }
}

const BASE64_RE = /^[A-Za-z0-9+/]*={0,2}$/

function isObject (v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function parseEntry (path: string, key: string, entry: unknown): RegistryCredential | undefined {
  const where = `auths[${JSON.stringify(key)}]`
  if (!isObject(entry)) throw new DockerConfigError(path, `${where} must be an object`)
  const { auth, username, password } = entry
  if (typeof auth === 'string' && auth !== '') {
    const decoded = BASE64_RE.test(auth) ? Buffer.from(auth, 'base64').toString('utf8') : ''
    const colon = decoded.indexOf(':')
    if (colon <= 0) throw new DockerConfigError(path, `${where}.auth is not base64 of "username:password"`)
    return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) }
  }
  if (typeof username === 'string' && username !== '' && typeof password === 'string') return { username, password }
  // Entries left empty by credsStore/credHelpers or holding only an identitytoken: nothing we can use.
  return undefined
}

/**
 * Reads a docker `config.json`. No path or a missing file means no credentials (anonymous pulls);
 * a file that exists but cannot be used is an error, so a typo does not silently downgrade to anonymous.
 */
export async function loadDockerCredentials (path: string | undefined): Promise<DockerCredentials> {
  if (path === undefined) return new DockerCredentials()
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return new DockerCredentials()
    throw new DockerConfigError(path, (err as Error).message, { cause: err })
  }
  let config: unknown
  try {
    config = JSON.parse(text)
  } catch (err) {
    throw new DockerConfigError(path, `not JSON (${(err as Error).message.split('\n')[0] ?? ''})`, { cause: err })
  }
  if (!isObject(config)) throw new DockerConfigError(path, 'top level must be an object')
  const { auths } = config
  if (auths === undefined) return new DockerCredentials()
  if (!isObject(auths)) throw new DockerConfigError(path, '"auths" must be an object')
  const entries: Array<[string, RegistryCredential]> = []
  for (const [key, entry] of Object.entries(auths)) {
    const credential = parseEntry(path, key, entry)
    if (credential !== undefined) entries.push([key, credential])
  }
  return new DockerCredentials(entries)
}
