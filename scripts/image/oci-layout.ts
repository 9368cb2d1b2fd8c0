// The OCI image layout: each platform's config and manifest, the index over them, oci-layout and index.json.
import { createHash } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Blob, Layer } from './blob.js'
import { APP_DIR, APP_GID, APP_UID, BUILDER_VERSION, DATA_DIR, IMAGE_SOURCE, MEDIA, P2P_PORT, REGISTRY_PORT } from './constants.js'
import type { Platform } from './platforms.js'

/** What every platform's image says about the build. */
export interface ImageFacts {
  /** The config's and history's `created` (RFC 3339, from SOURCE_DATE_EPOCH). */
  readonly created: string
  /** flotilla's version (package.json's). */
  readonly version: string
  readonly nodeVersion: string
  /** The git commit, when built from a checkout. */
  readonly revision: string | undefined
  /** package.json's description and license, for the labels. */
  readonly description: string | undefined
  readonly license: string | undefined
}

export async function writeJsonBlob (blobsDir: string, value: unknown): Promise<Blob> {
  const bytes = Buffer.from(JSON.stringify(value))
  const hex = createHash('sha256').update(bytes).digest('hex')
  await writeFile(join(blobsDir, hex), bytes)
  return { digest: `sha256:${hex}`, size: bytes.length }
}

/** One platform's image config and manifest into the blob dir; returns the manifest's descriptor. */
export async function writeImageManifest (blobsDir: string, facts: ImageFacts, platform: Platform, layers: Layer[]): Promise<Blob> {
  const { created, version, nodeVersion, revision } = facts
  const labels: Record<string, string> = {
    'org.opencontainers.image.title': 'flotilla',
    'org.opencontainers.image.description': facts.description ?? 'flotilla',
    'org.opencontainers.image.version': version,
    'org.opencontainers.image.source': IMAGE_SOURCE,
    'org.opencontainers.image.licenses': facts.license ?? 'Apache-2.0',
    ...(revision === undefined ? {} : { 'org.opencontainers.image.revision': revision }),
  }
  const config = await writeJsonBlob(blobsDir, {
    created,
    architecture: platform.architecture,
    ...(platform.variant === undefined ? {} : { variant: platform.variant }),
    os: 'linux',
    config: {
      User: `${APP_UID}:${APP_GID}`,
      Env: [
        'PATH=/usr/local/bin:/usr/bin:/bin',
        'NODE_ENV=production',
        `FLOTILLA_LISTEN=0.0.0.0:${REGISTRY_PORT}`,
        `FLOTILLA_DATA_DIR=${DATA_DIR}`,
      ],
      Entrypoint: ['/usr/local/bin/node', `${APP_DIR}/dist/cli/main.js`],
      Cmd: ['serve'],
      WorkingDir: APP_DIR,
      ExposedPorts: { [`${REGISTRY_PORT}/tcp`]: {}, [`${P2P_PORT}/tcp`]: {} },
      Labels: labels,
      StopSignal: 'SIGTERM',
    },
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
    history: [
      { created, created_by: `scripts/build-image.ts: Node ${nodeVersion} (npm node-linux-${platform.nodeArch}), glibc, user ${APP_UID}`, comment: `builder ${BUILDER_VERSION}` },
      { created, created_by: `scripts/build-image.ts: npm ci --omit=dev --cpu=${platform.nodeArch}` },
      { created, created_by: 'scripts/build-image.ts: dist/, src/containerd/protos/, package.json' },
    ],
  })
  return await writeJsonBlob(blobsDir, {
    schemaVersion: 2,
    mediaType: MEDIA.manifest,
    config: { mediaType: MEDIA.config, digest: config.digest, size: config.size },
    layers: layers.map((l) => ({ mediaType: MEDIA.layer, digest: l.digest, size: l.size })),
    annotations: { 'org.opencontainers.image.version': version, 'org.opencontainers.image.source': IMAGE_SOURCE },
  })
}

/**
 * The index over the platforms' manifests into the blob dir, and the layout's oci-layout and index.json
 * (which names the index `reference`); returns the index's descriptor.
 */
export async function writeLayout (
  layoutDir: string,
  blobsDir: string,
  manifests: ReadonlyArray<{ readonly platform: Platform, readonly manifest: Blob }>,
  version: string,
  reference: string,
): Promise<Blob> {
  const index = await writeJsonBlob(blobsDir, {
    schemaVersion: 2,
    mediaType: MEDIA.index,
    manifests: manifests.map(({ platform, manifest }) => ({
      mediaType: MEDIA.manifest,
      digest: manifest.digest,
      size: manifest.size,
      platform: { architecture: platform.architecture, os: 'linux', ...(platform.variant === undefined ? {} : { variant: platform.variant }) },
    })),
    annotations: { 'org.opencontainers.image.version': version, 'org.opencontainers.image.source': IMAGE_SOURCE },
  })
  await writeFile(join(layoutDir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }))
  await writeFile(join(layoutDir, 'index.json'), JSON.stringify({
    schemaVersion: 2,
    mediaType: MEDIA.index,
    manifests: [{
      mediaType: MEDIA.index,
      digest: index.digest,
      size: index.size,
      annotations: {
        // skopeo (oci-archive:FILE:REF) looks for ref.name; `ctr images import` names the image after io.containerd.image.name.
        'org.opencontainers.image.ref.name': reference,
        'io.containerd.image.name': reference,
      },
    }],
  }))
  return index
}
