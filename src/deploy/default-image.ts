import { readFileSync } from 'node:fs'

/**
 * The image flotilla's manifests run, and the tag the image build (`npm run image`) gives what it builds: one
 * place, so `deploy/` and the built image cannot drift apart. The version is package.json's (found from
 * src/deploy/ and from dist/deploy/ alike).
 */
export const IMAGE_REPOSITORY = 'ghcr.io/flotilla/flotilla'

export const FLOTILLA_VERSION: string = readVersion()

export const DEFAULT_IMAGE = `${IMAGE_REPOSITORY}:${FLOTILLA_VERSION}`

function readVersion (): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: unknown }
  if (typeof pkg.version !== 'string' || pkg.version === '') throw new TypeError('package.json has no version')
  return pkg.version
}
