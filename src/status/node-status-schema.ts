import { z } from 'zod'
import { precacheStatusSchema } from '../precache/precache-status-schema.js'
import type { NodeStatus } from './node-status.js'

/**
 * `NodeStatus` as a zod schema, for whoever reads `GET /status.json` (the CLI, the tests): an agent of another
 * version answers with a clear error instead of a table of `undefined`. Unknown keys are dropped.
 */
const isoTime = z.iso.datetime({ offset: true })
const bytes = z.number().nonnegative()

export const nodeStatusSchema: z.ZodType<NodeStatus> = z.object({
  node: z.object({
    role: z.string(),
    version: z.string(),
    zone: z.string().nullable(),
    address: z.string(),
    startedAt: isoTime,
    uptimeSeconds: z.number().nonnegative(),
    now: isoTime,
  }),
  peers: z.array(z.object({
    id: z.string(),
    address: z.string().nullable(),
    zone: z.string().nullable(),
    lastSeen: isoTime.nullable(),
  })),
  store: z.object({
    bytes,
    ownBytes: bytes.nullable(),
    linkedBytes: bytes.nullable(),
    budgetBytes: bytes.nullable(),
    evictions: z.number().nonnegative(),
    evictedBytes: bytes,
  }),
  downloads: z.array(z.object({
    digest: z.string(),
    registry: z.string().nullable(),
    repository: z.string().nullable(),
    bytesDone: bytes,
    size: bytes.nullable(),
    rate: z.number().nonnegative(),
    source: z.string(),
    startedAt: isoTime,
  })),
  precache: precacheStatusSchema.nullable(),
  upstreams: z.array(z.object({
    registry: z.string(),
    endpoint: z.string(),
    circuit: z.enum(['closed', 'open', 'half-open']),
    lastError: z.string().nullable(),
    lastErrorAt: isoTime.nullable(),
  })),
  recentErrors: z.array(z.object({ at: isoTime, message: z.string() })),
  servedBytes: z.record(z.string(), bytes),
  upstreamBytesSaved: bytes,
})
