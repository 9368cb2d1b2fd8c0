// How long a fresh agent takes to answer its first pull, next to the same pull of a second image once it has
// served one: the tag, the platform manifest, the config and the image's data layer (the busybox layer is the
// same in both images), each timed with curl from the agent's namespace, and the agent's CPU seconds.
//
//   npm run build && npx tsx bench/first-request.ts [--runs 3]   (needs root, docker-registry, skopeo, umoci, curl)
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { buildTestImage, hostManifest, type TestImage } from '../test/helpers/test-image.js'
import { curlGet } from './lib-curl.js'
import { assertBuilt, startDistAgent } from './lib-dist-agent.js'
import { withNetnsUpstream } from './lib-netns-upstream.js'
import { cpuOf } from './lib-rss.js'

const { values } = parseArgs({ options: { runs: { type: 'string', default: '3' } } })
await assertBuilt()
const build = async (workDir: string): Promise<TestImage[]> => await Promise.all([buildTestImage({ workDir, largeLayerMiB: 2, tag: 'one' }), buildTestImage({ workDir, largeLayerMiB: 3, tag: 'two' })])
await withNetnsUpstream('first-request', 'bench/first', build, async ({ workDir, node, upAddr, images }) => {
  for (let i = 0; i < Number(values.runs); i++) {
    const agent = await startDistAgent({
      name: `agent-${i}`, netns: node.ns, listen: '0.0.0.0:5000', dataDir: join(workDir, `data-${i}`), logFile: join(workDir, `agent-${i}.log`),
      args: ['--registry', `${upAddr}=http://${upAddr}`, '--default-registry', upAddr],
    })
    try {
      for (const image of images) {
        const before = await cpuOf(agent.process.pid)
        const steps = await pull(node.ns, agent.url, image)
        const cpu = await cpuOf(agent.process.pid) - before
        console.log(`run ${i + 1}, image ${image.tag}: ${steps.map(([what, ms]) => `${what} ${ms.toFixed(0)} ms`).join(', ')}; total ${steps.reduce((a, [, ms]) => a + ms, 0).toFixed(0)} ms, agent ${cpu.toFixed(2)} CPU s`)
      }
    } finally {
      await agent.stop()
    }
  }
})

async function pull (netns: string, base: string, image: TestImage): Promise<Array<[string, number]>> {
  const m = hostManifest(image)
  // The data layer: the busybox layer is the same in both images, so only this one is new to the second pull.
  const data = m.layers.reduce((a, b) => (b.size > a.size ? b : a))
  const accept = 'Accept: application/vnd.oci.image.index.v1+json,application/vnd.oci.image.manifest.v1+json'
  const out: Array<[string, number]> = []
  for (const [what, path] of [['tag', `manifests/${image.tag}`], ['manifest', `manifests/${m.digest}`], ['config', `blobs/${m.configDigest}`], ['layer', `blobs/${data.digest}`]] as const) {
    const [r] = await curlGet([`${base}/v2/bench/first/${path}`], { netns, headers: [accept] })
    if (r?.status !== 200) throw new Error(`${what}: status ${String(r?.status)}`)
    out.push([what, r.ms])
  }
  return out
}
