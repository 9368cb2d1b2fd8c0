import { parse as parseYaml } from 'yaml'
import { z } from 'zod'
import { ConfigError } from '../config/config-error.js'
import { duration } from '../config/option-types.js'
import { oneLine } from '../errors/one-line.js'
import { isLabelKey, isLabelValue } from '../kube/labels.js'
import { formatImageReference, parseImageReference, parsePlatform, type ImageReference, type Platform } from '../oci/index.js'

/** How often a set's tags are re-resolved unless it says otherwise. */
export const DEFAULT_REFRESH_MS = 10 * 60_000
const MIN_REFRESH_MS = 1000
const MAX_SPEC_BYTES = 1024 * 1024

/** One declared image: its reference normalised as containerd does, or why it is not one. */
export type PrecacheImage =
  | { readonly input: string, readonly key: string, readonly ref: ImageReference, readonly error?: undefined }
  | { readonly input: string, readonly key: string, readonly ref?: undefined, readonly error: string }

export interface PrecacheSet {
  readonly name: string
  /** matchLabels against the node's labels; empty: every node. */
  readonly nodeSelector: Readonly<Record<string, string>>
  readonly images: readonly PrecacheImage[]
  readonly refreshMs: number
  /** Platforms warmed in the store-only mode; empty: the node's own. */
  readonly platforms: readonly Platform[]
}

export interface PrecacheSpec {
  readonly sets: readonly PrecacheSet[]
}

const SET_NAME = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/

const specSchema = z.strictObject({
  sets: z.array(z.strictObject({
    name: z.string().max(63).regex(SET_NAME, 'expected a lowercase name (a-z, 0-9, - and .), e.g. web'),
    nodeSelector: z.record(z.string(), z.string().refine(isLabelValue, 'not a Kubernetes label value')).optional(),
    images: z.array(z.string()).default([]),
    refresh: duration.optional(),
    platforms: z.array(z.string()).optional(),
  })).default([]),
})

/**
 * Parses the pre-cache file. The file as a whole must be valid (else a ConfigError naming the problem, and
 * the last good sets stay in force); a reference that does not parse fails only that image.
 */
export function parsePrecacheSpec (text: string, file = 'pre-cache file'): PrecacheSpec {
  if (Buffer.byteLength(text) > MAX_SPEC_BYTES) throw new ConfigError(`${file}: larger than ${MAX_SPEC_BYTES} bytes`)
  // A file caught half-written (truncated, then written) must not read as "no sets" and unpin everything.
  if (text.trim() === '') throw new ConfigError(`${file}: empty (to declare no sets, write sets: [])`)
  let raw: unknown
  try {
    raw = parseYaml(text, { prettyErrors: false, maxAliasCount: 100 })
  } catch (err) {
    throw new ConfigError(`${file}: not valid YAML: ${oneLine((err as Error).message)}`, { cause: err })
  }
  const parsed = specSchema.safeParse(raw)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    const where = issue === undefined || issue.path.length === 0 ? '' : `${issue.path.join('.')}: `
    throw new ConfigError(`${file}: ${where}${oneLine(issue?.message ?? 'invalid')}`)
  }
  const seen = new Set<string>()
  const sets = parsed.data.sets.map((s, i): PrecacheSet => {
    if (seen.has(s.name)) throw new ConfigError(`${file}: sets.${i}.name: set ${s.name} is declared twice`)
    seen.add(s.name)
    const badKey = Object.keys(s.nodeSelector ?? {}).find((k) => !isLabelKey(k))
    if (badKey !== undefined) throw new ConfigError(`${file}: sets.${i}.nodeSelector.${badKey}: not a Kubernetes label key`)
    const refreshMs = s.refresh ?? DEFAULT_REFRESH_MS
    if (refreshMs < MIN_REFRESH_MS) throw new ConfigError(`${file}: sets.${i}.refresh: at least 1s`)
    const platforms = (s.platforms ?? []).map((p, j) => {
      try {
        return parsePlatform(p)
      } catch (err) {
        throw new ConfigError(`${file}: sets.${i}.platforms.${j}: ${(err as Error).message}`)
      }
    })
    return { name: s.name, nodeSelector: s.nodeSelector ?? {}, images: dedupe(s.images.map(parseImage)), refreshMs, platforms }
  })
  return { sets }
}

/** `docker.io/library/busybox:1.36`, as containerd names the image it pulls for `busybox:1.36`. */
function parseImage (input: string): PrecacheImage {
  try {
    const parsed = parseImageReference(input)
    // containerd drops the tag of a reference that has a digest too (`name:tag@sha256:…` is `name@sha256:…`).
    const ref = parsed.digest === undefined ? parsed : { registry: parsed.registry, repository: parsed.repository, digest: parsed.digest }
    return { input, key: formatImageReference(ref), ref }
  } catch (err) {
    return { input, key: input, error: `not an image reference: ${oneLine((err as Error).message)}` }
  }
}

function dedupe (images: readonly PrecacheImage[]): PrecacheImage[] {
  const byKey = new Map<string, PrecacheImage>()
  for (const image of images) if (!byKey.has(image.key)) byKey.set(image.key, image)
  return [...byKey.values()]
}
