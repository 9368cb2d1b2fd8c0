// What the environment says: the cache dir ($FLOTILLA_IMAGE_CACHE) and the timestamp (SOURCE_DATE_EPOCH).
import { homedir } from 'node:os'
import { join, resolve } from 'node:path'

export function cacheRoot (): string {
  const explicit = process.env.FLOTILLA_IMAGE_CACHE
  if (explicit !== undefined && explicit !== '') return resolve(explicit)
  const xdg = process.env.XDG_CACHE_HOME
  return join(xdg !== undefined && xdg !== '' ? xdg : join(homedir(), '.cache'), 'flotilla', 'image')
}

export function sourceDateEpoch (): number {
  const raw = process.env.SOURCE_DATE_EPOCH
  if (raw === undefined || raw === '') return 0
  if (!/^\d+$/.test(raw)) throw new Error(`SOURCE_DATE_EPOCH must be a number of seconds, got ${JSON.stringify(raw)}`)
  return Number(raw)
}
