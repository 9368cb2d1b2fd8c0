import { z } from 'zod'
import { PRECACHE_PHASES, type PrecacheStatus } from './precache-status.js'

/**
 * `PrecacheStatus` as a zod schema, for whoever reads the JSON of `GET /status/precache` (the CLI): an agent
 * of another version answers with a clear error instead of a table of `undefined`. Unknown keys are
 * dropped, so a newer agent that adds facts still reads; a missing or mistyped one does not.
 */
const isoTime = z.iso.datetime({ offset: true })

const imageSchema = z.object({
  ref: z.string(),
  digest: z.string().nullable(),
  phase: z.enum(PRECACHE_PHASES),
  pinned: z.boolean(),
  lastConfirmed: isoTime.nullable(),
  bytes: z.number().int().nonnegative().nullable(),
  error: z.string().nullable(),
})

const setSchema = z.object({
  name: z.string(),
  matches: z.boolean(),
  refreshSeconds: z.number().nonnegative(),
  images: z.array(imageSchema),
})

export const precacheStatusSchema: z.ZodType<PrecacheStatus> = z.object({
  file: z.string().nullable(),
  fileError: z.string().nullable(),
  loadedAt: isoTime.nullable(),
  mode: z.enum(['containerd', 'store']),
  nodeLabels: z.record(z.string(), z.string()).nullable(),
  nodeLabelsError: z.string().nullable(),
  pin: z.object({
    honoured: z.boolean().nullable(),
    containerdVersion: z.string().nullable(),
    note: z.string().nullable(),
  }),
  sets: z.array(setSchema),
})
