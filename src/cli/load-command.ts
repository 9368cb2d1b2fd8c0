import { stat } from 'node:fs/promises'
import type { Command } from 'commander'
import { byteProgress } from './progress.js'

interface LoadOptions {
  agent: string
  containerdSocket?: string
}

export function registerLoad (program: Command): void {
  program.command('load')
    .description('load bundle files (or every part of one, in any order) into the agent on this node; its peers can pull them at once')
    .argument('<file...>', 'bundles written by flotilla save (.tar, .tar.zst, or their parts), or OCI archives')
    .option('--agent <url>', 'the agent on this node (env FLOTILLA_AGENT)', process.env.FLOTILLA_AGENT ?? 'http://127.0.0.1:5000')
    .option('--containerd-socket <path>', 'also have this node\'s containerd pull each image (through its hosts.toml, from the agent), ready for kubelet')
    .action(async (files: string[], o: LoadOptions) => {
      let total = 0
      for (const f of files) total += (await stat(f).catch(() => undefined))?.size ?? 0
      const { loadBundle } = await import('../bundle/load-bundle.js')
      const started = Date.now()
      const progress = byteProgress('loading', total)
      const result = await loadBundle(files, { agent: o.agent, onProgress: (n) => { progress.update(n) } }).finally(() => { progress.stop() })
      if (o.containerdSocket !== undefined) {
        const { CriImageClient } = await import('../containerd/cri-image-client.js')
        const cri = new CriImageClient({ socket: o.containerdSocket })
        try {
          for (const image of result.images) await cri.pullImage(image.ref, { timeoutMs: 30 * 60_000 })
        } finally {
          cri.close()
        }
      }
      const seconds = (Date.now() - started) / 1000
      process.stdout.write(`loaded ${result.images.length} image(s) (${result.images.map((i) => i.ref).join(', ')}): ${result.blobs} blobs, ${result.newBlobs} new, ` +
        `${(result.bytes / 1e6).toFixed(1)} MB in ${seconds.toFixed(1)} s into ${o.agent}${o.containerdSocket === undefined ? '' : ' and containerd'}\n`)
    })
}
