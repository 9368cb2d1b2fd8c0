// The build: inputs (cached), the three layers per platform (cached), the layout, the archive.
import { mkdir, mkdtemp, readFile, rm, stat } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import { DEFAULT_IMAGE, FLOTILLA_VERSION } from '../../src/deploy/default-image.js'
import { appEntries, nativeAddonEntries } from './app-entries.js'
import type { Blob, Layer } from './blob.js'
import { APP_DIR, ROOT } from './constants.js'
import { ensureNodeModules } from './ensure-node-modules.js'
import { ensureNode } from './ensure-node.js'
import { addTree, type Entry } from './entries.js'
import { cacheRoot, sourceDateEpoch } from './environment.js'
import { gitRevision } from './git-revision.js'
import { debianLibs, hostLibs, type LibFile } from './glibc-libs.js'
import { cachedLayer, LayerCache } from './layer-cache.js'
import { log } from './log.js'
import { writeImageManifest, writeLayout, type ImageFacts } from './oci-layout.js'
import { PLATFORMS, platformName, selectedPlatforms, type Platform } from './platforms.js'
import { runtimeEntries } from './runtime-entries.js'
import { writeArchive } from './write-archive.js'

/** Builds the archive (see scripts/build-image.ts); prints its path as the last line of stdout. */
export async function buildImage (): Promise<void> {
  const started = Date.now()
  const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { description?: string, license?: string }
  const version = FLOTILLA_VERSION
  const reference = DEFAULT_IMAGE
  const nodeVersion = process.version.replace(/^v/, '')
  const epoch = sourceDateEpoch()
  const mtime = new Date(epoch * 1000)
  const created = mtime.toISOString().replace(/\.000Z$/, 'Z')
  const cache = cacheRoot()
  await mkdir(cache, { recursive: true })

  const host = PLATFORMS.find((p) => p.nodeArch === process.arch)
  if (host === undefined || process.platform !== 'linux') throw new Error(`build the image on linux/amd64 or linux/arm64 (this is ${process.platform}/${process.arch})`)
  const platforms = selectedPlatforms(host)

  const outDir = join(ROOT, 'dist-image')
  const out = resolve(process.env.FLOTILLA_IMAGE_OUT ?? join(outDir, `flotilla-${version}.oci.tar`))
  await mkdir(dirname(out), { recursive: true })
  const layoutDir = await mkdtemp(join(dirname(out), '.layout-'))
  try {
    const blobsDir = join(layoutDir, 'blobs', 'sha256')
    await mkdir(blobsDir, { recursive: true })
    const revision = await gitRevision()
    log(`${reference} from ${ROOT}${revision === undefined ? '' : ` at ${revision.slice(0, 12)}`}, Node ${nodeVersion}, ${platforms.map(platformName).join(' + ')}`)
    const facts: ImageFacts = { created, version, nodeVersion, revision, description: pkg.description, license: pkg.license }

    const layerCache = new LayerCache(join(cache, 'layers'))
    const app = await cachedLayer(layerCache, blobsDir, 'app', await appEntries(), mtime)
    const manifests: Array<{ platform: Platform, manifest: Blob, layers: Layer[] }> = []
    const skipped: string[] = []
    for (const platform of platforms) {
      let libs: LibFile[]
      const nodeDir = await ensureNode(cache, platform, nodeVersion)
      try {
        libs = platform === host ? await hostLibs(platform, join(nodeDir, 'bin', 'node')) : await debianLibs(cache, platform)
      } catch (err) {
        if (platform === host) throw err
        const why = err instanceof Error ? err.message.split('\n')[0] ?? '' : String(err)
        log(`WARNING: leaving ${platformName(platform)} out: no glibc for it (${why})`)
        skipped.push(platformName(platform))
        continue
      }
      const runtime = await cachedLayer(layerCache, blobsDir, `runtime-${platform.architecture}`, await runtimeEntries(platform, nodeDir, libs), mtime)
      const depsEntries: Entry[] = []
      await addTree(depsEntries, await ensureNodeModules(cache, platform), `${APP_DIR}/node_modules`)
      // The sendfile addon, built by `npm ci` for this machine only: the other platform serves through JavaScript.
      if (platform === host) depsEntries.push(...await nativeAddonEntries())
      const deps = await cachedLayer(layerCache, blobsDir, `deps-${platform.architecture}`, depsEntries, mtime)
      const layers = [runtime, deps, app]

      const manifest = await writeImageManifest(blobsDir, facts, platform, layers)
      manifests.push({ platform, manifest, layers })
      log(`${platformName(platform)}: ${layers.map((l) => `${l.name} ${(l.size / 1048576).toFixed(1)} MiB (${(l.uncompressedSize / 1048576).toFixed(1)} MiB unpacked)`).join(', ')}`)
    }

    const index = await writeLayout(layoutDir, blobsDir, manifests, version, reference)
    await writeArchive(layoutDir, out, mtime)
    await layerCache.prune()
    const size = (await stat(out)).size
    log(`wrote ${out}: ${(size / 1048576).toFixed(1)} MiB, index ${index.digest}${skipped.length > 0 ? `, without ${skipped.join(', ')}` : ''}, in ${((Date.now() - started) / 1000).toFixed(1)} s`)
    process.stdout.write(`${out}\n`)
  } finally {
    await rm(layoutDir, { recursive: true, force: true })
  }
}
