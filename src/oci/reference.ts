import { parseDigest, truncate, type Digest } from './digest.js'
import { OciError } from './oci-error.js'

export type RepositoryName = string & { readonly __brand: 'RepositoryName' }
export type Tag = string & { readonly __brand: 'Tag' }

const COMPONENT = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*'
const NAME_RE = new RegExp(`^${COMPONENT}(?:/${COMPONENT})*$`)
const TAG_RE = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/
const DOMAIN_RE = /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:.]+\])(?::[0-9]{1,5})?$/
const MAX_NAME_LENGTH = 255

export const DOCKER_HUB = 'docker.io'

/** Validates a repository path as it appears in `/v2/<name>/...` (no registry part). */
export function parseRepositoryName (input: string): RepositoryName {
  if (input.length === 0 || input.length > MAX_NAME_LENGTH || !NAME_RE.test(input)) {
    throw new OciError('NAME_INVALID', `invalid repository name ${JSON.stringify(truncate(input))}`)
  }
  return input as RepositoryName
}

export function parseTag (input: string): Tag {
  if (!TAG_RE.test(input)) throw new OciError('TAG_INVALID', `invalid tag ${JSON.stringify(truncate(input))}`)
  return input as Tag
}

/** A manifest reference in a URL: a tag or a digest. */
export type ManifestRef = { readonly kind: 'tag', readonly tag: Tag } | { readonly kind: 'digest', readonly digest: Digest }

export function parseManifestRef (input: string): ManifestRef {
  if (input.includes(':')) return { kind: 'digest', digest: parseDigest(input).digest }
  return { kind: 'tag', tag: parseTag(input) }
}

/** Normalizes a registry host as containerd's `ns` or an image reference names it. */
export function normalizeRegistry (input: string): string {
  const host = input.trim().toLowerCase()
  const port = /:(\d+)$/.exec(host)?.[1]
  if (!DOMAIN_RE.test(host) || (port !== undefined && (Number(port) < 1 || Number(port) > 65535))) {
    throw new OciError('NAME_INVALID', `invalid registry ${JSON.stringify(truncate(input))}`)
  }
  if (host === 'index.docker.io' || host === 'registry-1.docker.io') return DOCKER_HUB
  return host
}

/** Docker Hub's official images live under `library/`; other registries take names as they are. */
export function normalizeRepository (registry: string, name: string): RepositoryName {
  const repo = parseRepositoryName(name)
  if (registry === DOCKER_HUB && !repo.includes('/')) return `library/${repo}` as RepositoryName
  return repo
}

export interface ImageReference {
  readonly registry: string
  readonly repository: RepositoryName
  readonly tag?: Tag
  readonly digest?: Digest
}

/**
 * Parses a familiar image reference (`busybox`, `ghcr.io/o/r:1`, `localhost:5000/x@sha256:…`) with the docker
 * defaults: no registry means docker.io, a short docker.io name gets `library/`, no tag or digest means `latest`.
 */
export function parseImageReference (input: string): ImageReference {
  let rest = input.trim()
  if (rest === '') throw new OciError('NAME_INVALID', 'empty image reference')
  let digest: Digest | undefined
  const at = rest.indexOf('@')
  if (at !== -1) {
    digest = parseDigest(rest.slice(at + 1)).digest
    rest = rest.slice(0, at)
  }
  let tag: Tag | undefined
  const lastSlash = rest.lastIndexOf('/')
  const colon = rest.lastIndexOf(':')
  if (colon > lastSlash) {
    tag = parseTag(rest.slice(colon + 1))
    rest = rest.slice(0, colon)
  }
  let registry = DOCKER_HUB
  const slash = rest.indexOf('/')
  if (slash !== -1) {
    const first = rest.slice(0, slash)
    if (first.includes('.') || first.includes(':') || first === 'localhost' || first !== first.toLowerCase()) {
      registry = normalizeRegistry(first)
      rest = rest.slice(slash + 1)
    }
  }
  const repository = normalizeRepository(registry, rest)
  if (tag === undefined && digest === undefined) tag = 'latest' as Tag
  return { registry, repository, ...(tag === undefined ? {} : { tag }), ...(digest === undefined ? {} : { digest }) }
}

export function formatImageReference (ref: ImageReference): string {
  return `${ref.registry}/${ref.repository}${ref.tag === undefined ? '' : `:${ref.tag}`}${ref.digest === undefined ? '' : `@${ref.digest}`}`
}
