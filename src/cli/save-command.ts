import { readFile } from 'node:fs/promises'
import { homedir } from 'node:os'
import { join } from 'node:path'
import type { Command } from 'commander'
import type { ImageSource } from '../bundle/image-source.js'
import { ConfigError } from '../config/config-error.js'
import { parseSize } from '../config/size.js'
import { parsePlatform, type Platform } from '../oci/index.js'
import { collectOption } from './collect-option.js'
import { byteProgress } from './progress.js'

interface SaveOptions {
  output?: string
  file?: string[]
  fromManifests?: string[]
  platform?: string[]
  config?: string
  registry?: string[]
  credentialsFile?: string
  via?: string
  cacheDir?: string
  excludeFrom?: string[]
  maxPartSize?: string
  referrers: boolean
}

/** References from the arguments, `-f` lists (one per line, `#` comments) and Kubernetes YAML, each once. */
async function gatherRefs (args: readonly string[], o: SaveOptions): Promise<string[]> {
  const refs = [...args]
  for (const list of o.file ?? []) {
    const text = list === '-' ? await readStdin() : await readFile(list, 'utf8').catch((err: NodeJS.ErrnoException) => { throw new ConfigError(`cannot read ${list}: ${err.code ?? err.message}`) })
    refs.push(...text.split('\n').map((l) => l.replace(/#.*$/, '').trim()).filter((l) => l !== ''))
  }
  if ((o.fromManifests ?? []).length > 0) {
    const { readManifestDocuments } = await import('../discovery/read-manifests.js')
    const { discoverImages } = await import('../discovery/discover-images.js')
    const found = discoverImages(await readManifestDocuments(o.fromManifests ?? [], process.stdin))
    for (const w of found.warnings) process.stderr.write(`flotilla: warning: ${w}\n`)
    refs.push(...found.images)
  }
  return [...new Set(refs)]
}

async function readStdin (): Promise<string> {
  const chunks: Buffer[] = []
  for await (const c of process.stdin) chunks.push(c as Buffer)
  return Buffer.concat(chunks).toString('utf8')
}

export function registerSave (program: Command): void {
  program.command('save')
    .description('save images into one bundle file (an OCI layout tar, with a Docker manifest.json) for air-gapped clusters')
    .argument('[ref...]', 'images to save, e.g. busybox:1.36 or registry.example.com/team/web@sha256:…')
    .requiredOption('-o, --output <file>', 'the bundle: FILE.tar, or FILE.tar.zst to compress with zstd')
    .option('-f, --file <list>', 'a file of references, one per line (- for stdin); repeatable', collectOption)
    .option('--from-manifests <path>', 'Kubernetes YAML (file, directory, or - for stdin) whose workloads\' images to save; repeatable', collectOption)
    .option('--platform <os/arch[/variant]>', 'only these platforms\' blobs (the index keeps its digest); repeatable', collectOption)
    .option('-c, --config <file>', 'the agent\'s YAML configuration (registries, credentials)')
    .option('-r, --registry <name=url>', 'an upstream registry, as for serve; repeatable', collectOption)
    .option('--credentials-file <file>', 'docker config.json with upstream credentials')
    .option('--via <url>', 'fetch through a running agent instead of from the upstreams, e.g. http://127.0.0.1:5000')
    .option('--cache-dir <dir>', 'content-addressed staging cache: an interrupted save resumes from it (default ~/.cache/flotilla/save)')
    .option('--exclude-from <bundle>', 'leave out the blobs an earlier bundle carried (the cluster has them); repeatable', collectOption)
    .option('--max-part-size <size>', 'split into parts of at most this size (e.g. 4GB), each loadable on its own')
    .option('--no-referrers', 'do not carry the images\' referrers (signatures, SBOMs)')
    .action(async (args: string[], o: SaveOptions) => {
      const output = o.output ?? ''
      const refs = await gatherRefs(args, o)
      if (refs.length === 0) throw new ConfigError('nothing to save: give image references, -f LIST or --from-manifests PATH')
      let platforms: Platform[]
      try {
        platforms = (o.platform ?? []).map(parsePlatform)
      } catch (err) {
        throw new ConfigError((err as Error).message)
      }
      const maxPartSize = o.maxPartSize === undefined ? undefined : parseSize(o.maxPartSize)
      const { FsBlobStore } = await import('../store/fs-blob-store.js')
      const { collectImages } = await import('../bundle/collect-images.js')
      const { writeBundle } = await import('../bundle/bundle-writer.js')
      const source = await openSource(o)
      const started = Date.now()
      try {
        const cache = await FsBlobStore.open(o.cacheDir ?? defaultCacheDir())
        const exclude = new Map<string, number>()
        if ((o.excludeFrom ?? []).length > 0) {
          const { listBundle } = await import('../bundle/bundle-reader.js')
          for (const old of o.excludeFrom ?? []) for (const [d, size] of (await listBundle(old)).blobs) exclude.set(d, size)
        }
        let fetched = 0
        let fromCache = 0
        const collected = await collectImages(refs, {
          source, cache, platforms, referrers: o.referrers, exclude, signal: new AbortController().signal,
          onBlob: (e) => { if (e.isCached) fromCache += e.size; else fetched += e.size },
        })
        const progress = byteProgress('writing', collected.bytes)
        const written = await writeBundle({
          file: output, images: collected.images, blobs: collected.blobs, excluded: collected.excluded,
          open: async (digest) => await cache.open(digest) ?? await lost(digest), ...(maxPartSize === undefined ? {} : { maxPartSize }),
          onProgress: (n) => { progress.update(n) },
        })
        progress.stop()
        const seconds = (Date.now() - started) / 1000
        const left = Object.keys(collected.excluded).length
        process.stdout.write(`saved ${collected.images.length} image(s), ${collected.blobs.length} blobs, ${(written.bytes / 1e6).toFixed(1)} MB to ${written.files.join(', ')} ` +
          `in ${seconds.toFixed(1)} s (fetched ${(fetched / 1e6).toFixed(1)} MB, ${(fromCache / 1e6).toFixed(1)} MB from the cache${left === 0 ? '' : `, ${left} blobs left out`})\n`)
      } finally {
        await source.close()
      }
    })
}

/** Where `flotilla save` stages what it fetches unless told otherwise: it survives an interrupted save. */
function defaultCacheDir (env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_CACHE_HOME !== undefined && env.XDG_CACHE_HOME !== '' ? env.XDG_CACHE_HOME : join(homedir(), '.cache')
  return join(base, 'flotilla', 'save')
}

/** A blob staged a moment ago is gone (something else cleaned the cache). */
async function lost (digest: string): Promise<never> {
  const { BundleError } = await import('../bundle/bundle-error.js')
  throw new BundleError('ERR_BUNDLE_IO', `the staging cache no longer holds ${digest}; save again`)
}

async function openSource (o: SaveOptions): Promise<ImageSource> {
  const { agentImageSource, upstreamImageSource } = await import('../bundle/image-source.js')
  if (o.via !== undefined) return agentImageSource(o.via)
  const { loadConfig } = await import('../config/load-config.js')
  const { openUpstream } = await import('../roles/open-upstream.js')
  const { createLogger } = await import('../logger.js')
  const config = await loadConfig(o.config ?? process.env.FLOTILLA_CONFIG, {
    ...(o.registry === undefined ? {} : { registries: o.registry }),
    ...(o.credentialsFile === undefined ? {} : { credentialsFile: o.credentialsFile }),
  })
  const { upstream } = await openUpstream(config, createLogger('warn'))
  return upstreamImageSource(upstream)
}
