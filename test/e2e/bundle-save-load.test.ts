// Issue 12 on one node, real parts: `flotilla save` from Debian's Distribution (a multi-arch image saved for
// one platform, and a single-platform one), the bundle read by `ctr images import` and skopeo, resumed from its
// staging cache, saved again through a running agent (--via); `flotilla load` into an agent whose upstream is
// gone, then pulled from it by skopeo; a corrupted and a truncated bundle refused, with no tag made visible.
import assert from 'node:assert/strict'
import { copyFile, open, readFile, stat, truncate } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { startContainerd, writeHostsToml, type Containerd } from '../helpers/containerd.js'
import { startDistribution, type Distribution } from '../helpers/distribution.js'
import { flotillaCommand, startFlotilla, type FlotillaAgent } from '../helpers/flotilla-agent.js'
import { runCommand, runCommandChecked, type CommandResult } from '../helpers/run-command.js'
import { makeTempDir, type TempDir } from '../helpers/temp-dir.js'
import { buildTestImage, hostArchitecture, pushTestImage, type TestImage } from '../helpers/test-image.js'

async function flotilla (args: readonly string[], timeoutMs = 120_000): Promise<CommandResult> {
  const [cmd, argv] = flotillaCommand(args)
  return await runCommand(cmd, argv, { timeoutMs })
}

/** index.json of a bundle, read with tar as any tool would. */
async function indexOf (bundle: string): Promise<{ manifests: Array<{ digest: string, annotations?: Record<string, string> }> }> {
  const r = await runCommandChecked('tar', ['-xOf', bundle, 'index.json'], { timeoutMs: 30_000 })
  return JSON.parse(r.stdout) as { manifests: Array<{ digest: string, annotations?: Record<string, string> }> }
}

void describe('air-gap bundles on one node (issue 12)', () => {
  let work: TempDir
  let registry: Distribution
  let multi: TestImage
  let single: TestImage
  let multiRef: string
  let singleRef: string
  let bundle: string
  const cacheDir = (): string => join(work.path, 'cache')
  const delta = (): string => join(work.path, 'delta.tar')

  before(async () => {
    work = await makeTempDir('bundle-e2e')
    ;[registry, multi] = await Promise.all([startDistribution(), buildTestImage({ largeLayerMiB: 6 })])
    single = await buildTestImage({ largeLayerMiB: 2, tag: 'single' })
    multiRef = await pushTestImage(multi.layoutDir, registry.host, 'bundle/multi', multi.tag)
    // The single-platform image: the host's manifest of the second test image alone (skopeo copies one
    // platform of an index without --all), pushed under a tag.
    singleRef = `${registry.host}/bundle/single:v1`
    await runCommandChecked('skopeo', ['--override-arch', hostArchitecture(), 'copy', '--dest-tls-verify=false', '--preserve-digests', `oci:${single.layoutDir}:${single.tag}`, `docker://${singleRef}`], { timeoutMs: 120_000 })
    bundle = join(work.path, 'images.tar')
  })

  after(async () => {
    await registry?.stop()
    await work?.cleanup()
  })

  test('save: one platform of a multi-arch image and a single-platform image, the index bytes kept', async () => {
    const r = await flotilla(['save', '-o', bundle, '--registry', `${registry.host}=${registry.url}`, '--platform', `linux/${hostArchitecture()}`, '--cache-dir', cacheDir(), multiRef, singleRef])
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout, /^saved 2 image\(s\), /)
    const index = await indexOf(bundle)
    const byName = new Map(index.manifests.map((m) => [m.annotations?.['io.containerd.image.name'], m]))
    const host = single.manifests.find((m) => m.platform.architecture === hostArchitecture())
    assert.equal(byName.get(multiRef)?.digest, multi.indexDigest, 'the multi-arch image keeps its index digest')
    assert.equal(byName.get(singleRef)?.digest, host?.digest)
    assert.equal(byName.get(multiRef)?.annotations?.['org.opencontainers.image.ref.name'], multiRef)
    // The other platform's config is not shipped.
    const other = multi.manifests.find((m) => m.platform.architecture !== hostArchitecture())
    const listing = (await runCommandChecked('tar', ['-tf', bundle], { timeoutMs: 30_000 })).stdout
    assert.ok(other !== undefined && !listing.includes(other.configDigest.slice(7)), 'the other platform\'s config is in the bundle')
    assert.ok(listing.includes(multi.largeLayerDigest.slice(7)))
  })

  test('the bundle reads with ctr images import and skopeo', async () => {
    let ctrd: Containerd | undefined
    try {
      ctrd = await startContainerd({ namespace: 'k8s.io' })
      const imported = await ctrd.ctr(['images', 'import', bundle], { timeoutMs: 120_000 })
      assert.equal(imported.code, 0, imported.stderr)
      const ls = (await ctrd.ctr(['images', 'ls', '-q'], { timeoutMs: 10_000 })).stdout.split('\n')
      assert.ok(ls.includes(multiRef), ls.join(' '))
      assert.ok(ls.includes(singleRef), ls.join(' '))
    } finally {
      await ctrd?.stop()
    }
    const out = join(work.path, 'skopeo-dir')
    await runCommandChecked('skopeo', ['copy', `oci-archive:${bundle}:${singleRef}`, `dir:${out}`], { timeoutMs: 60_000 })
    const host = single.manifests.find((m) => m.platform.architecture === hostArchitecture())
    const manifest = await readFile(join(out, 'manifest.json'))
    const { createHash } = await import('node:crypto')
    assert.equal(`sha256:${createHash('sha256').update(manifest).digest('hex')}`, host?.digest)
  })

  test('a second save resumes from the staging cache: nothing is fetched again', async () => {
    const again = join(work.path, 'again.tar')
    const r = await flotilla(['save', '-o', again, '--registry', `${registry.host}=${registry.url}`, '--platform', `linux/${hostArchitecture()}`, '--cache-dir', cacheDir(), multiRef, singleRef])
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout, /fetched 0\.0 MB/)
    assert.equal((await stat(again)).size, (await stat(bundle)).size)
  })

  test('save --via a running agent gives the same index', async () => {
    const agent = await startFlotilla({ registries: { [registry.host]: registry.url } })
    try {
      const via = join(work.path, 'via.tar')
      const r = await flotilla(['save', '-o', via, '--via', agent.url, '--cache-dir', join(work.path, 'cache-via'), '--platform', `linux/${hostArchitecture()}`, multiRef])
      assert.equal(r.code, 0, r.stderr)
      assert.equal((await indexOf(via)).manifests[0]?.digest, multi.indexDigest)
    } finally {
      await agent.stop()
    }
  })

  test('save --exclude-from ships only what the earlier bundle lacks; --max-part-size splits into parts', async () => {
    const r = await flotilla(['save', '-o', delta(), '--registry', `${registry.host}=${registry.url}`, '--cache-dir', cacheDir(), '--exclude-from', bundle, multiRef])
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout, /blobs left out/)
    const other = multi.manifests.find((m) => m.platform.architecture !== hostArchitecture())
    const listing = (await runCommandChecked('tar', ['-tf', delta()], { timeoutMs: 30_000 })).stdout
    assert.ok(other !== undefined && listing.includes(other.configDigest.slice(7)), 'the other platform is shipped')
    assert.ok(!listing.includes(multi.largeLayerDigest.slice(7)), 'the shared layer is shipped again')
    const parts = await flotilla(['save', '-o', join(work.path, 'split.tar'), '--registry', `${registry.host}=${registry.url}`, '--cache-dir', cacheDir(), '--max-part-size', '3MB', multiRef, singleRef])
    assert.equal(parts.code, 0, parts.stderr)
    assert.match(parts.stdout, /split\.part-001-of-00\d\.tar/)
  })

  describe('load into an agent whose upstream is gone', () => {
    let agent: FlotillaAgent
    before(async () => {
      await registry.stop()
      agent = await startFlotilla({ registries: { [registry.host]: registry.url }, args: ['--default-registry', registry.host] })
    })
    after(async () => { await agent?.stop() })

    test('a corrupted bundle and a truncated one are refused, naming the problem; no tag becomes visible', async () => {
      const corrupt = join(work.path, 'corrupt.tar')
      await copyFile(bundle, corrupt)
      // A byte inside the large layer: its tar header is the 512-byte block that starts with its name
      // (manifest.json names it too, but not at a block boundary); its data follows the header.
      const raw = await readFile(corrupt)
      const name = Buffer.from(`blobs/sha256/${multi.largeLayerDigest.slice(7)}\0`)
      let at = raw.indexOf(name)
      while (at >= 0 && at % 512 !== 0) at = raw.indexOf(name, at + 1)
      assert.ok(at >= 0, 'the layer\'s tar header')
      const fh = await open(corrupt, 'r+')
      await fh.write(Buffer.from([raw[at + 512 + 4096] as number ^ 0xff]), 0, 1, at + 512 + 4096)
      await fh.close()
      const bad = await flotilla(['load', corrupt, '--agent', agent.url])
      assert.notEqual(bad.code, 0)
      assert.match(bad.stderr.trim(), new RegExp(`^flotilla: .*${multi.largeLayerDigest.slice(7, 19)}`))
      assert.equal(bad.stderr.trim().split('\n').length, 1, bad.stderr)

      const cut = join(work.path, 'cut.tar')
      await copyFile(bundle, cut)
      await truncate(cut, Math.floor((await stat(bundle)).size / 2))
      const short = await flotilla(['load', cut, '--agent', agent.url])
      assert.notEqual(short.code, 0)
      assert.match(short.stderr, /^flotilla: .*(truncated|ended|incomplete|unexpected end)/i)

      const early = await flotilla(['load', delta(), '--agent', agent.url])
      assert.notEqual(early.code, 0)
      assert.match(early.stderr, new RegExp(`^flotilla: ${multiRef.replace(/[.]/g, '\\.')} lacks \\d+ blob\\(s\\)`))

      for (const ref of [multiRef, singleRef]) {
        const path = ref.slice(registry.host.length + 1).replace(':', '/manifests/')
        const res = await fetch(`${agent.url}/v2/${path}`, { signal: AbortSignal.timeout(10_000) })
        assert.ok(res.status >= 400, `${ref} is visible after a failed load: ${res.status}`)
      }
    })

    test('load, then skopeo pulls both images from the agent with the upstream gone', async () => {
      const r = await flotilla(['load', bundle, '--agent', agent.url])
      assert.equal(r.code, 0, r.stderr)
      assert.match(r.stdout, /^loaded 2 image\(s\)/)
      const out = join(work.path, 'pulled')
      await runCommandChecked('skopeo', ['copy', '--src-tls-verify=false', `docker://${agent.host}/bundle/multi:${multi.tag}`, `oci:${out}:m`], { timeoutMs: 60_000 })
      await runCommandChecked('skopeo', ['copy', '--src-tls-verify=false', `docker://${agent.host}/bundle/single:v1`, `oci:${out}:s`], { timeoutMs: 60_000 })
      const head = await fetch(`${agent.url}/v2/bundle/multi/manifests/${multi.tag}`, { method: 'HEAD', headers: { accept: 'application/vnd.oci.image.index.v1+json' }, signal: AbortSignal.timeout(10_000) })
      assert.equal(head.headers.get('docker-content-digest'), multi.indexDigest)
      // Loading again sends nothing new.
      const again = await flotilla(['load', bundle, '--agent', agent.url])
      assert.equal(again.code, 0, again.stderr)
      assert.match(again.stdout, / 0 new,/)
      // The delta on top: now the other platform is there too.
      const d = await flotilla(['load', delta(), '--agent', agent.url])
      assert.equal(d.code, 0, d.stderr)
      const other = multi.manifests.find((m) => m.platform.architecture !== hostArchitecture())
      const res = await fetch(`${agent.url}/v2/bundle/multi/blobs/${other?.configDigest ?? ''}`, { headers: { 'cache-control': 'only-if-cached' }, signal: AbortSignal.timeout(10_000) })
      assert.equal(res.status, 200)
    })

    test('load --containerd-socket: the node\'s containerd pulls each image from the agent, named for the kubelet', async () => {
      let ctrd: Containerd | undefined
      try {
        ctrd = await startContainerd({ namespace: 'k8s.io' })
        // The upstream is stopped: containerd's only way to the images is its hosts.toml mirror, the agent.
        await writeHostsToml(ctrd.certsDir, registry.host, { server: registry.url, mirrors: [{ url: agent.url, dialTimeout: '200ms' }] })
        const r = await flotilla(['load', bundle, '--agent', agent.url, '--containerd-socket', ctrd.socket])
        assert.equal(r.code, 0, r.stderr)
        assert.match(r.stdout, /and containerd/)
        const ls = (await ctrd.ctr(['images', 'ls'], { timeoutMs: 10_000 })).stdout
        assert.match(ls, new RegExp(`${multiRef.replace(/[.]/g, '\\.')}\\s+\\S+\\s+${multi.indexDigest}`))
        assert.ok(ls.includes(singleRef), ls)
      } finally {
        await ctrd?.stop()
      }
    })

    test('the parts of a split bundle load in any order', async () => {
      const fresh = await startFlotilla({ registries: { [registry.host]: registry.url }, args: ['--default-registry', registry.host] })
      try {
        const { readdir } = await import('node:fs/promises')
        const parts = (await readdir(work.path)).filter((f) => /^split\.part-\d{3}-of-\d{3}\.tar$/.test(f)).sort().reverse().map((f) => join(work.path, f))
        assert.ok(parts.length >= 2, parts.join(' '))
        const r = await flotilla(['load', ...parts, '--agent', fresh.url])
        assert.equal(r.code, 0, r.stderr)
        assert.match(r.stdout, /^loaded 2 image\(s\)/)
        const head = await fetch(`${fresh.url}/v2/bundle/single/manifests/v1`, { method: 'HEAD', signal: AbortSignal.timeout(10_000) })
        assert.equal(head.status, 200)
      } finally {
        await fresh.stop()
      }
    })
  })
})
