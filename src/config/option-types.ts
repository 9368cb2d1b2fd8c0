import { z } from 'zod'
import { parseLabelList } from '../kube/labels.js'
import { normalizeRegistry } from '../oci/index.js'
import { parseDuration } from './duration.js'
import { parseSize } from './size.js'

// The value types options are declared with. Defaults are applied with .prefault() (see option.ts), so they are
// parsed like input: a duration default is written `5m` and comes out in milliseconds.

/** `200ms`, `30s`, `5m`, `1h` or a bare number of seconds, to milliseconds. */
export const duration = z.union([z.string(), z.number()]).transform((v, ctx) => {
  try {
    return parseDuration(v)
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message })
    return z.NEVER
  }
})

/** `150MB`, `20GiB` or a bare number of bytes, to bytes. */
export const size = z.union([z.string(), z.number()]).transform((v, ctx) => {
  try {
    return parseSize(v)
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message })
    return z.NEVER
  }
})

/** A share of something, in percent: more than 0, at most 100. */
export const percent = z.coerce.number().gt(0).max(100)

export const hostPort = z.string().regex(/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]*):\d{1,5}$/, 'expected HOST:PORT, e.g. 127.0.0.1:5000')

export const endpoint = z.string().refine((v) => {
  try {
    const u = new URL(v)
    return (u.protocol === 'http:' || u.protocol === 'https:') && u.pathname.replace(/\/+$/, '') === '' && u.search === ''
  } catch {
    return false
  }
}, 'expected an http:// or https:// base URL with no path, e.g. https://registry-1.docker.io')

/** A registry host, normalized (`index.docker.io` → `docker.io`). */
export const registryName = z.string().transform((v, ctx) => {
  try {
    return normalizeRegistry(v)
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message })
    return z.NEVER
  }
})

export const nonEmpty = z.string().min(1)

/** `k=v,k2=v2` (or, in the file, a map) of Kubernetes labels. */
export const labelList = z.union([z.string(), z.record(z.string(), z.string())]).transform((v, ctx) => {
  try {
    return parseLabelList(typeof v === 'string' ? v : Object.entries(v).map(([k, x]) => `${k}=${x}`).join(','))
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message })
    return z.NEVER
  }
})
