import type { PrecacheStatus } from '../precache/precache-status.js'
import type { NodeStatus } from './node-status.js'

/** A peer as the router knows it (the Router port's PeerInfo, structurally). */
export interface StatusPeer {
  readonly id: string
  readonly httpAddress: string
  readonly zone?: string
}

/** A running blob download, as BlobFetch exposes it. */
export interface StatusDownload {
  readonly digest: string
  readonly registry: string | undefined
  readonly size: number | undefined
  readonly bytesReceived: number
  readonly startedAt: number
  /** Where the bytes come from now (`upstream:docker.io`, `peer:10.0.0.2:5000`), when one answered. */
  readonly source: string | undefined
}

/** Counters and gauges the status reads (see metricsReadings). */
export interface StatusReadings {
  readonly store: NodeStatus['store']
  readonly servedBytes: Readonly<Record<string, number>>
  readonly upstreamBytes: number
}

/**
 * The narrow ports a node's status is taken from; each is optional where a role may lack it (peers without
 * p2p, pre-cache without a file). They are read when the status is asked for, never pushed.
 */
export interface NodeStatusPorts {
  readonly role: string
  readonly version: string
  readonly startedAt: number
  /** The registry API address, known once it listens. */
  readonly address: () => string
  readonly zone: () => string | null
  readonly readings: () => Promise<StatusReadings>
  readonly downloads: () => readonly StatusDownload[]
  readonly peers?: () => readonly StatusPeer[]
  readonly precache?: () => PrecacheStatus
  readonly upstreams?: () => NodeStatus['upstreams']
  readonly recentErrors?: () => NodeStatus['recentErrors']
  readonly now?: () => number
}

/** Assembles `NodeStatus` from its ports: the one place /status, /status.json and `flotilla status` get it. */
export class NodeStatusSource {
  readonly #o: NodeStatusPorts

  constructor (ports: NodeStatusPorts) {
    if (!Number.isFinite(ports.startedAt)) throw new TypeError(`NodeStatusSource: startedAt must be a time in ms, got ${String(ports.startedAt)}`)
    this.#o = ports
  }

  async status (): Promise<NodeStatus> {
    const o = this.#o
    const now = (o.now ?? Date.now)()
    const readings = await o.readings()
    // Connected peers are live: the router drops a peer once its connection goes.
    const seen = new Date(now).toISOString()
    const served = Object.values(readings.servedBytes).reduce((a, b) => a + b, 0)
    return {
      node: {
        role: o.role,
        version: o.version,
        zone: o.zone(),
        address: o.address(),
        startedAt: new Date(o.startedAt).toISOString(),
        uptimeSeconds: Math.max(0, Math.floor((now - o.startedAt) / 1000)),
        now: seen,
      },
      peers: (o.peers?.() ?? [])
        .map((p) => ({ id: p.id, address: p.httpAddress === '' ? null : p.httpAddress, zone: p.zone ?? null, lastSeen: seen }))
        .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)),
      store: readings.store,
      downloads: o.downloads().map((d) => {
        const seconds = Math.max(0.001, (now - d.startedAt) / 1000)
        return {
          digest: d.digest,
          registry: d.registry ?? null,
          repository: null,
          bytesDone: d.bytesReceived,
          size: d.size ?? null,
          rate: Math.round(d.bytesReceived / seconds),
          source: d.source ?? 'starting',
          startedAt: new Date(d.startedAt).toISOString(),
        }
      }),
      precache: o.precache?.() ?? null,
      upstreams: o.upstreams?.() ?? [],
      recentErrors: o.recentErrors?.() ?? [],
      servedBytes: readings.servedBytes,
      upstreamBytesSaved: Math.max(0, served - readings.upstreamBytes),
    }
  }
}
