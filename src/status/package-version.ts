import { readFileSync } from 'node:fs'

/**
 * flotilla's version from its package.json, found upwards from this file (src/status when run from source,
 * dist/src/status when built); 'unknown' when it cannot be read. Read once at start.
 */
export function packageVersion (from: string = import.meta.url): string {
  let dir = new URL('.', from)
  for (let i = 0; i < 5; i++) {
    dir = new URL('..', dir)
    try {
      const pkg = JSON.parse(readFileSync(new URL('package.json', dir), 'utf8')) as { name?: unknown, version?: unknown }
      if (pkg.name === 'flotilla' && typeof pkg.version === 'string') return pkg.version
    } catch {
      // not here: one level up
    }
  }
  return 'unknown'
}
