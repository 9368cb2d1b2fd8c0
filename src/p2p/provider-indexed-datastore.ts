import { MemoryDatastore } from 'datastore-core'
import { Key, type KeyQuery, type Pair, type Query } from 'interface-datastore'
import type { AbortOptions } from '@libp2p/interface'

/** Where kad-dht keeps provider records: `<prefix>/<cid>/<peer id>` (its default datastore prefix is `/dht`). */
const PROVIDER_KEY = /^(\/dht\/provider\/[^/]+)\/[^/]+$/
const PROVIDERS_OF_ONE_CID = /^\/dht\/provider\/[^/]+$/

/**
 * libp2p's in-memory datastore, with provider records indexed by CID. kad-dht looks providers up with a
 * prefix query, which the plain MemoryDatastore answers by scanning every key: ~5 ms with 4,000 records,
 * ~50 ms with 40,000 (a few nodes' worth of containerd content). Here that query reads only the records of
 * the one CID. Every other query still scans, with the same results as before.
 *
 * A query's prefix `/dht/provider/<cid>` matches exactly the records of that CID: CIDs of different
 * multihashes never prefix one another (the hash code and length lead the bytes).
 */
export class ProviderIndexedDatastore extends MemoryDatastore {
  /** `/dht/provider/<cid>` → the full keys of its records. */
  readonly #byCid = new Map<string, Set<string>>()

  override put (key: Key, val: Uint8Array, options?: AbortOptions): Key {
    const result = super.put(key, val, options) as Key
    const text = key.toString()
    const cid = PROVIDER_KEY.exec(text)?.[1]
    if (cid !== undefined) {
      let keys = this.#byCid.get(cid)
      if (keys === undefined) this.#byCid.set(cid, keys = new Set())
      keys.add(text)
    }
    return result
  }

  override delete (key: Key, options?: AbortOptions): void {
    void super.delete(key, options) // synchronous in MemoryDatastore
    const text = key.toString()
    const cid = PROVIDER_KEY.exec(text)?.[1]
    if (cid === undefined) return
    const keys = this.#byCid.get(cid)
    keys?.delete(text)
    if (keys?.size === 0) this.#byCid.delete(cid)
  }

  override * _all (q: Query, options?: AbortOptions): Generator<Pair> {
    const keys = this.#indexed(q.prefix, options)
    if (keys === undefined) return yield * super._all(q, options) as Generator<Pair>
    for (const key of keys) {
      // deleted since the query began: skipped, as a scan would
      if (this.has(key) === true) yield { key, value: this.get(key) as Uint8Array }
    }
  }

  override * _allKeys (q: KeyQuery, options?: AbortOptions): Generator<Key> {
    const keys = this.#indexed(q.prefix, options)
    if (keys === undefined) return yield * super._allKeys(q, options) as Generator<Key>
    yield * keys
  }

  /** The records a prefix query asks for, when it asks for the providers of one CID; else undefined (scan). */
  #indexed (prefix: string | undefined, options?: AbortOptions): Generator<Key> | undefined {
    if (prefix === undefined || !PROVIDERS_OF_ONE_CID.test(prefix)) return undefined
    // A copy: a caller may delete what it reads (kad-dht's sweep of expired records does).
    const texts = [...(this.#byCid.get(prefix) ?? [])]
    return (function * () {
      for (const text of texts) {
        options?.signal?.throwIfAborted()
        yield new Key(text)
      }
    })()
  }
}
