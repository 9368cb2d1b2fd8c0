import { OciError, truncate } from '../oci/index.js'

export interface RequestTarget {
  /** The path, percent-decoded exactly once; never has dot segments, backslashes or control characters. */
  readonly pathname: string
  /** The path as the client sent it (still encoded), for redirects that must name the same resource. */
  readonly rawPathname: string
  /** The query as sent, without `?` (passed on upstream as it is). */
  readonly query: string
  readonly params: URLSearchParams
}

// Decoded, these can only be an attempt to climb out of a name or to smuggle a line: names never hold them.
// eslint-disable-next-line no-control-regex -- control characters are exactly what this refuses
const FORBIDDEN_DECODED = /[\\\x00-\x1f\x7f]/

/**
 * Parses an HTTP/1.1 request target, strictly and once: only origin-form (`/path?query`) is accepted.
 * Not `new URL()`: it would take `//host/x` for an authority, turn `\` into `/`, resolve `..` away and throw
 * on `//%`, so that what it checked and what it served could differ. Everything refused is NAME_INVALID (400).
 */
export function parseRequestTarget (target: string): RequestTarget {
  const q = target.indexOf('?')
  const rawPathname = q === -1 ? target : target.slice(0, q)
  const query = q === -1 ? '' : target.slice(q + 1)
  const refuse = (why: string): never => { throw new OciError('NAME_INVALID', `${why}: ${JSON.stringify(truncate(target))}`) }
  // Absolute-form (`http://h/x`), authority-form and asterisk-form are for proxies and OPTIONS, not for us.
  if (!rawPathname.startsWith('/')) refuse('the request target must be a path starting with "/"')
  if (rawPathname.startsWith('//')) refuse('the request target must not start with "//"')
  if (rawPathname.includes('\\')) refuse('backslashes are not allowed in the request target')
  if (target.includes('#')) refuse('a request target has no fragment')
  let pathname: string
  try {
    pathname = decodeURIComponent(rawPathname)
  } catch {
    return refuse('malformed percent-encoding in the request target')
  }
  if (FORBIDDEN_DECODED.test(pathname)) refuse('backslashes and control characters are not allowed in the path')
  // Checked after decoding, so `%2e%2e` and `..%2f` are refused like `..`: a name is refused, never rewritten.
  if (pathname.split('/').some((s) => s === '.' || s === '..')) refuse('path segments "." and ".." are not allowed')
  return { pathname, rawPathname, query, params: new URLSearchParams(query) }
}
