import { startDistribution, type Distribution } from '../test/helpers/distribution.js'
import { runCommand } from '../test/helpers/run-command.js'
import { buildTestImage, type TestImage } from '../test/helpers/test-image.js'
import type { Teardown } from './lib-teardown.js'

/** Starts Distribution and builds the test image at once; registers what started for teardown even when the other failed. */
export async function startRegistryAndImage (teardown: Teardown, workDir: string, largeLayerMiB: number): Promise<[Distribution, TestImage]> {
  const [registry, image] = await Promise.allSettled([startDistribution(), buildTestImage({ workDir, largeLayerMiB })])
  if (registry.status === 'fulfilled') teardown.add('distribution', registry.value.stop)
  if (registry.status === 'rejected') throw registry.reason
  if (image.status === 'rejected') throw image.reason
  return [registry.value, image.value]
}

/** The first line a tool prints about its version, for the report. */
export async function toolVersion (cmd: string, args: readonly string[]): Promise<string> {
  const r = await runCommand(cmd, args, { timeoutMs: 10_000 })
  return (r.stdout.trim() || r.stderr.trim()).split('\n')[0] ?? 'unknown'
}
