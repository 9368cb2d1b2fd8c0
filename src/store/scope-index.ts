import type { Digest } from '../oci/index.js'

/**
 * Where restricted content is known to be: digest → the `registry/repository` names it was fetched under
 * (with credentials) or confirmed in by the upstream. A digest with no entry is unrestricted (public content).
 * `add` takes effect in memory before it returns a promise, so a check that follows it sees it.
 */
export interface ScopeIndex {
  /** The repositories a restricted digest is known in, or undefined when the digest is unrestricted. */
  get (digest: Digest): ReadonlySet<string> | undefined
  add (digest: Digest, repository: string): Promise<void>
  delete (digest: Digest): Promise<void>
}

/** Scopes in a Map; FileScopeIndex adds persistence on top of the same logic. */
export class MemoryScopeIndex implements ScopeIndex {
  protected readonly scopes = new Map<Digest, Set<string>>()

  get (digest: Digest): ReadonlySet<string> | undefined {
    return this.scopes.get(digest)
  }

  /** True when the entry is new. */
  protected put (digest: Digest, repository: string): boolean {
    const known = this.scopes.get(digest)
    if (known === undefined) {
      this.scopes.set(digest, new Set([repository]))
      return true
    }
    if (known.has(repository)) return false
    known.add(repository)
    return true
  }

  async add (digest: Digest, repository: string): Promise<void> {
    this.put(digest, repository)
  }

  async delete (digest: Digest): Promise<void> {
    this.scopes.delete(digest)
  }
}
