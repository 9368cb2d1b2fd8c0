// The set-up of the single-node netns benches: a temp dir, two network namespaces (`up` and `n1`) and
// Debian's Distribution on up:5000 holding the bench's images, torn down whatever happens.
import { createNetnsCluster, type NetnsCluster, type NetnsHost } from '../test/helpers/netns-cluster.js'
import { pushFromNetns, startNetnsRegistry } from '../test/helpers/netns-registry.js'
import { makeTempDir } from '../test/helpers/temp-dir.js'
import type { TestImage } from '../test/helpers/test-image.js'

export interface NetnsUpstream {
  readonly workDir: string
  readonly cluster: NetnsCluster
  /** Where the upstream runs. */
  readonly up: NetnsHost
  /** Where the agent under test runs. */
  readonly node: NetnsHost
  /** `ip:port` of the upstream, as seen from `node`. */
  readonly upAddr: string
  readonly images: readonly TestImage[]
}

/** Builds the images (in the work dir), pushes each under `repo:<its tag>` and runs `fn` with all of it. */
export async function withNetnsUpstream<T> (
  name: string, repo: string, build: (workDir: string) => Promise<readonly TestImage[]>, fn: (s: NetnsUpstream) => Promise<T>,
): Promise<T> {
  const work = await makeTempDir(name)
  try {
    const cluster = await createNetnsCluster(['up', 'n1'])
    try {
      const [up, node] = [cluster.host('up'), cluster.host('n1')]
      const images = await build(work.path)
      const upAddr = `${up.ip}:5000`
      const registry = await startNetnsRegistry({ cluster, host: up, dir: work.path, addr: upAddr })
      try {
        for (const image of images) await pushFromNetns(up, image.layoutDir, image.tag, `${upAddr}/${repo}:${image.tag}`)
        return await fn({ workDir: work.path, cluster, up, node, upAddr, images })
      } finally {
        await registry.stop('SIGTERM', 5000)
      }
    } finally {
      await cluster.destroy()
    }
  } finally {
    await work.cleanup()
  }
}
