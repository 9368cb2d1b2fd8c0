import type { Command } from 'commander'
import { collectOption } from './collect-option.js'

/**
 * `flotilla images --from-manifests PATH|-`: the images Kubernetes manifests run, one fully qualified reference
 * a line on stdout (what `flotilla save` would fetch); values skipped go to stderr. The readers are imported
 * inside the action so `flotilla --help` stays fast.
 */

export class ImagesCommandError extends Error {
  override readonly name = 'ImagesCommandError'
  constructor (readonly code: 'ERR_CLI_OPTION_INVALID', message: string) {
    super(message)
  }
}

interface ImagesOptions {
  fromManifests?: string[]
}

export function registerImages (program: Command): void {
  program.command('images')
    .description('print the images that Kubernetes manifests (workloads, the helm.sh/images chart annotation) run, one reference a line')
    .option('--from-manifests <path>', 'a YAML/JSON file, a directory (recursively), or - for stdin (e.g. helm template output); repeatable',
      collectOption)
    .action(async (opts: ImagesOptions) => {
      const paths = opts.fromManifests ?? []
      if (paths.length === 0) {
        throw new ImagesCommandError('ERR_CLI_OPTION_INVALID', 'images: give at least one --from-manifests PATH (a file, a directory, or - for stdin)')
      }
      const [{ readManifestDocuments }, { discoverImages }] = await Promise.all([
        import('../discovery/read-manifests.js'),
        import('../discovery/discover-images.js'),
      ])
      const { images, warnings } = discoverImages(await readManifestDocuments(paths, process.stdin))
      for (const warning of warnings) process.stderr.write(`flotilla: warning: ${warning}\n`)
      process.stdout.write(images.map((image) => `${image}\n`).join(''))
    })
}
