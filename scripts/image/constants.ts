// Fixed facts of the image: where the tree is, the app's user, dirs and ports, the OCI media types.
import { dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
// The image's name and tag (package.json's version) come from where deploy/'s manifests take them.
import { IMAGE_REPOSITORY } from '../../src/deploy/default-image.js'

/** The repository's root (this file is scripts/image/constants.ts). */
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..')

/** `org.opencontainers.image.source`: ghcr.io links an image to the GitHub repository of the same path. */
export const IMAGE_SOURCE = `https://github.com/${IMAGE_REPOSITORY.replace(/^ghcr\.io\//, '')}`

export const APP_UID = 65532
export const APP_GID = 65532
export const APP_DIR = '/app'
export const DATA_DIR = '/var/lib/flotilla'
export const REGISTRY_PORT = 5000
export const P2P_PORT = 5001
/** Bumped when the layout of the layers changes, so cached layer inputs are not mistaken for new ones. */
export const BUILDER_VERSION = '1'

export const MEDIA = {
  index: 'application/vnd.oci.image.index.v1+json',
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  config: 'application/vnd.oci.image.config.v1+json',
  layer: 'application/vnd.oci.image.layer.v1.tar+gzip',
} as const
