import type { Digest } from '../oci/index.js'
import type { ClientAddress } from './client-address.js'
import type { ExistenceChecker } from './existence-checker.js'
import type { Region, RegionTable } from './region-table.js'

/** Why a blob went where it went: the client's region has it, or why the origin serves it instead. */
export type RedirectReason = 'region' | 'no-region' | 'region-lacks' | 'region-unavailable'

export interface RedirectDecision {
  readonly location: string
  readonly region: string | null
  readonly reason: RedirectReason
  /** The address the decision was made for. */
  readonly client: string | null
}

export interface RedirectStatus {
  readonly origin: string
  /** Every host a client can be sent to, for firewall allow-lists: the origin's and each region's. */
  readonly hosts: readonly string[]
  readonly regions: ReadonlyArray<{ readonly name: string, readonly blobBase: string, readonly cidrs: readonly string[], readonly circuit: string, readonly lastError: string | null }>
  readonly tableError: string | null
  readonly tableLoadedAt: string | null
}

export interface RedirectorOptions {
  readonly origin: string
  readonly table: RegionTable
  readonly addresses: ClientAddress
  readonly checker: ExistenceChecker
  /** Where the table is re-read from (the watched configuration file): its last refusal and load, for the status. */
  readonly tableFile?: { readonly error: string | undefined, readonly loadedAt: Date | undefined }
}

/**
 * The redirector's decision for a blob: the region whose networks hold the client's address most
 * specifically, when that region is known to have the blob; else the origin. Manifests never come here.
 */
export class Redirector {
  readonly #origin: string
  readonly #addresses: ClientAddress
  readonly #checker: ExistenceChecker
  readonly #tableFile: RedirectorOptions['tableFile']
  readonly #startedAt = new Date()
  #table: RegionTable

  constructor (o: RedirectorOptions) {
    this.#origin = o.origin.replace(/\/+$/, '')
    this.#table = o.table
    this.#addresses = o.addresses
    this.#checker = o.checker
    this.#tableFile = o.tableFile
  }

  /** A new region table (the file changed). */
  setTable (table: RegionTable): void {
    this.#table = table
  }

  /** The region for an address, with no existence check (`flotilla redirect explain`). */
  regionOf (address: string): Region | undefined {
    return this.#table.match(address)
  }

  async decide (socketAddress: string | undefined, forwardedFor: string | string[] | undefined, repository: string, digest: Digest): Promise<RedirectDecision> {
    const client = this.#addresses.of(socketAddress, forwardedFor) ?? null
    const path = `/v2/${repository}/blobs/${digest}`
    const region = client === null ? undefined : this.#table.match(client)
    const toOrigin = (reason: RedirectReason): RedirectDecision => ({ location: `${this.#origin}${path}`, region: region?.name ?? null, reason, client })
    if (region === undefined) return toOrigin('no-region')
    const existence = await this.#checker.check(region, repository, digest)
    if (existence === 'present') return { location: `${region.blobBase}${path}`, region: region.name, reason: 'region', client }
    return toOrigin(existence === 'absent' ? 'region-lacks' : 'region-unavailable')
  }

  status (): RedirectStatus {
    const hosts = new Set([new URL(this.#origin).host, ...this.#table.regions.map((r) => new URL(r.blobBase).host)])
    return {
      origin: this.#origin,
      hosts: [...hosts],
      regions: this.#table.regions.map((r) => ({ name: r.name, blobBase: r.blobBase, cidrs: r.cidrs, ...this.#checker.health(r) })),
      tableError: this.#tableFile?.error ?? null,
      tableLoadedAt: (this.#tableFile?.loadedAt ?? this.#startedAt).toISOString(),
    }
  }
}
