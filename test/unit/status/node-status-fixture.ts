import type { NodeStatus } from '../../../src/status/node-status.js'

export const NOW = '2026-05-01T12:00:00.000Z'
export const DIGEST = `sha256:3f4a5b6c7d8e${'0'.repeat(52)}`

/** A status with every section filled, and text where a hostile agent (or registry) could put markup. */
export function fullStatus (): NodeStatus {
  return {
    node: { role: 'agent', version: '0.1.0', zone: 'eu-west-1a', address: '10.0.0.1:5000', startedAt: '2026-05-01T10:59:00.000Z', uptimeSeconds: 3660, now: NOW },
    peers: [{ id: '12D3KooWPeerBbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb', address: '10.0.0.2:5000', zone: 'eu-west-1b', lastSeen: NOW }],
    store: { bytes: 2_500_000_000, ownBytes: 2_000_000_000, linkedBytes: 500_000_000, budgetBytes: 10_000_000_000, evictions: 3, evictedBytes: 123_000_000 },
    downloads: [{ digest: DIGEST, registry: 'docker.io', repository: null, bytesDone: 5_000_000, size: 20_000_000, rate: 1_250_000, source: 'upstream:docker.io', startedAt: '2026-05-01T11:59:56.000Z' }],
    precache: {
      file: '/etc/flotilla/precache.yaml', fileError: null, loadedAt: '2026-05-01T11:58:00.000Z', mode: 'containerd', nodeLabels: {}, nodeLabelsError: null,
      pin: { honoured: true, containerdVersion: '1.7.13', note: null },
      sets: [
        { name: 'web', matches: true, refreshSeconds: 600, images: [
          { ref: 'docker.io/library/nginx:1.27', digest: DIGEST, phase: 'Ready', pinned: true, lastConfirmed: NOW, bytes: 70_000_000, error: null },
          { ref: 'docker.io/library/redis:7', digest: null, phase: 'Pulling', pinned: false, lastConfirmed: null, bytes: null, error: null },
        ] },
        { name: 'gpu', matches: false, refreshSeconds: 600, images: [] },
      ],
    },
    upstreams: [
      { registry: 'docker.io', endpoint: 'https://registry-1.docker.io', circuit: 'closed', lastError: null, lastErrorAt: null },
      { registry: 'ghcr.io', endpoint: 'https://ghcr.io', circuit: 'open', lastError: 'connect ECONNREFUSED <script>alert(1)</script>', lastErrorAt: '2026-05-01T11:59:30.000Z' },
    ],
    recentErrors: [{ at: '2026-05-01T11:59:50.000Z', message: 'request failed: ERR_UPSTREAM_UNAVAILABLE "<img src=x onerror=alert(2)>" & more' }],
    servedBytes: { hit: 9_000_000, peer: 3_000_000, upstream: 1_000_000 },
    upstreamBytesSaved: 12_000_000,
  }
}

/** The same node with nothing going on: no peers, downloads, pre-cache, errors or traffic. */
export function emptyStatus (): NodeStatus {
  const s = fullStatus()
  return {
    ...s,
    node: { ...s.node, zone: null, role: 'standalone' },
    peers: [],
    store: { bytes: 0, ownBytes: null, linkedBytes: null, budgetBytes: null, evictions: 0, evictedBytes: 0 },
    downloads: [],
    precache: null,
    upstreams: [],
    recentErrors: [],
    servedBytes: {},
    upstreamBytesSaved: 0,
  }
}
