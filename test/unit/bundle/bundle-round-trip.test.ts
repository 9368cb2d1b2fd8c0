import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { readdir, readFile, stat, truncate, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { mkdtemp, rm } from 'node:fs/promises'
import { Readable } from 'node:stream'
import { after, before, describe, test } from 'node:test'
import { BundleError } from '../../../src/bundle/bundle-error.js'
import { parseBundleInfo, parsePartsManifest } from '../../../src/bundle/bundle-format.js'
import { listBundle, readBundle, type BundleContents } from '../../../src/bundle/bundle-reader.js'
import { writeBundle } from '../../../src/bundle/bundle-writer.js'
import type { Digest } from '../../../src/oci/index.js'
import { digestOf, makeFixture, readAll, type Fixture } from './bundle-fixture.js'

const isBundleError = (code: string) => (err: unknown): boolean => {
  assert.ok(err instanceof BundleError, `expected a BundleError, got ${String(err)}`)
  assert.equal(err.code, code, err.message)
  assert.ok(!err.message.includes('\n'), 'one line')
  return true
}

/** Reads a bundle, collecting every blob's bytes as onBlob received them. */
async function readInto (file: string): Promise<{ contents: BundleContents, got: Map<Digest, Buffer> }> {
  const got = new Map<Digest, Buffer>()
  const contents = await readBundle(file, { onBlob: async (digest, _size, body) => { got.set(digest, await readAll(body)) } })
  return { contents, got }
}

describe('writeBundle → readBundle', () => {
  let dir: string
  let fx: Fixture
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'flotilla-bundle-unit-'))
    fx = makeFixture()
  })
  after(async () => { await rm(dir, { recursive: true, force: true }) })

  for (const name of ['plain.tar', 'compressed.tar.zst']) {
    test(`round trip: ${name}`, async () => {
      const file = join(dir, name)
      let progress = 0
      const result = await writeBundle({ file, images: fx.images, blobs: fx.list(), open: fx.open, onProgress: (n) => { progress = n } })
      assert.deepEqual(result.files, [file])
      assert.equal(result.bytes, (await stat(file)).size)
      assert.equal(progress, fx.list().reduce((n, b) => n + b.size, 0))
      assert.deepEqual((await readdir(dir)).filter((f) => f.endsWith('.partial')), [])
      const { contents, got } = await readInto(file)
      assert.equal(contents.blobs.size, fx.blobs.size)
      for (const [d, bytes] of fx.blobs) assert.ok(got.get(d)?.equals(bytes), `blob ${d}`)
      assert.deepEqual(contents.info?.images, fx.images)
      assert.deepEqual(contents.info?.excluded, {})
      assert.equal(contents.info?.part, undefined)
      assert.deepEqual(contents.index.images, fx.images.map((i) => ({ ref: i.ref, digest: i.digest, mediaType: i.mediaType, size: i.size })))
      const listed = await listBundle(file)
      assert.deepEqual([...listed.blobs].sort(), fx.list().map((b) => [b.digest, b.size]).sort())
    })
  }

  test('manifest.json names the first platform of an index, and no tag for an image by digest', async () => {
    const file = join(dir, 'docker.tar')
    await writeBundle({ file, images: fx.images, blobs: fx.list(), open: fx.open })
    const { stdout } = await import('node:child_process').then(async (cp) => await new Promise<{ stdout: string }>((resolve, reject) => {
      cp.execFile('tar', ['-xOf', file, 'manifest.json'], (err, out) => { if (err !== null) reject(err); else resolve({ stdout: out }) })
    }))
    const path = (d: string): string => `blobs/sha256/${d.slice(7)}`
    assert.deepEqual(JSON.parse(stdout), [
      { Config: path(fx.amd64.config), RepoTags: ['docker.io/library/multi:1.0'], Layers: fx.amd64.layers.map(path) },
      { Config: path(fx.single.config), RepoTags: [], Layers: fx.single.layers.map(path) },
    ])
  })

  test('parts: each part reads alone, parts.json has the right sha256, together they hold every blob', async () => {
    const file = join(dir, 'split.tar')
    // Three blobs of ~200 kB and small ones: 250 kB parts hold one big blob and some small ones.
    const result = await writeBundle({ file, images: fx.images, blobs: fx.list(), open: fx.open, maxPartSize: 250_000 })
    const parts = result.files.filter((f) => f.endsWith('.tar'))
    assert.equal(parts.length, 3)
    assert.deepEqual(parts.map((f) => f.slice(dir.length + 1)), ['split.part-001-of-003.tar', 'split.part-002-of-003.tar', 'split.part-003-of-003.tar'])
    assert.equal(result.files.at(-1), join(dir, 'split.parts.json'))
    const manifest = parsePartsManifest(await readFile(join(dir, 'split.parts.json')))
    const seen = new Map<Digest, Buffer>()
    const ids = new Set<string>()
    for (const [i, part] of manifest.parts.entries()) {
      const bytes = await readFile(join(dir, part.file))
      assert.ok(bytes.length <= 250_000, `${part.file} is ${bytes.length} bytes`)
      assert.equal(part.bytes, bytes.length)
      assert.equal(part.sha256, createHash('sha256').update(bytes).digest('hex'))
      const { contents, got } = await readInto(join(dir, part.file)) // in reverse order below too
      assert.deepEqual(contents.info?.part && { index: contents.info.part.index, count: contents.info.part.count }, { index: i + 1, count: 3 })
      ids.add(contents.info?.part?.id ?? '')
      assert.deepEqual(contents.info?.images, fx.images)
      // What this part does not carry is exactly what the others carry.
      assert.deepEqual(Object.keys(contents.info?.excluded ?? {}).sort(), [...fx.blobs.keys()].filter((d) => !got.has(d)).sort())
      for (const [d, b] of got) seen.set(d, b)
    }
    assert.equal(ids.size, 1)
    assert.equal(seen.size, fx.blobs.size)
    const all = await listBundle(join(dir, 'split.parts.json'))
    assert.equal(all.blobs.size, fx.blobs.size)
    assert.deepEqual(all.info?.excluded, {})
    assert.equal(all.info?.part, undefined)
    // Any order: the last part alone is a complete layout too.
    const last = await readInto(join(dir, manifest.parts[2]?.file ?? ''))
    assert.equal(last.contents.index.images.length, 2)
  })

  test('a blob larger than maxPartSize gets a part to itself', async () => {
    const file = join(dir, 'tiny-parts.tar')
    const result = await writeBundle({ file, images: fx.images, blobs: fx.list(), open: fx.open, maxPartSize: 10_000 })
    const parts = result.files.filter((f) => f.endsWith('.tar'))
    const big = [...fx.blobs.values()].filter((b) => b.length > 10_000).length
    assert.ok(parts.length >= big + 1, `${parts.length} parts for ${big} big blobs`)
    for (const p of parts) {
      const { contents } = await readInto(p)
      const bigOnes = [...contents.blobs.values()].filter((n) => n > 10_000).length
      if (bigOnes > 0) assert.equal(contents.blobs.size, 1, `${p} holds a big blob with others`)
    }
  })

  test('excluded blobs are recorded and left out', async () => {
    const file = join(dir, 'exclude.tar')
    const left = fx.amd64.layers[0] as Digest
    const size = fx.blobs.get(left)?.length ?? 0
    await writeBundle({ file, images: fx.images, blobs: fx.list().filter((b) => b.digest !== left), open: fx.open, excluded: { [left]: size } })
    const { contents } = await readInto(file)
    assert.equal(contents.blobs.has(left), false)
    assert.deepEqual(contents.info?.excluded, { [left]: size })
  })

  test('a byte flipped inside a blob: the body errors with ERR_BUNDLE_DIGEST before its end', async () => {
    const file = join(dir, 'flipped.tar')
    await writeBundle({ file, images: fx.images, blobs: fx.list(), open: fx.open })
    const bytes = await readFile(file)
    const victim = fx.blobs.get(fx.amd64.layers[1] as Digest) as Buffer
    const at = bytes.indexOf(victim.subarray(0, 64))
    assert.ok(at > 0)
    bytes[at + 1000] = (bytes[at + 1000] ?? 0) ^ 0xff
    await writeFile(file, bytes)
    const ended: Digest[] = []
    let bodyError: unknown
    await assert.rejects(readBundle(file, {
      onBlob: async (digest, _size, body) => {
        try {
          await readAll(body)
          ended.push(digest)
        } catch (err) {
          bodyError = err
          throw err
        }
      },
    }), isBundleError('ERR_BUNDLE_DIGEST'))
    assert.ok(bodyError instanceof BundleError && bodyError.code === 'ERR_BUNDLE_DIGEST' && bodyError.message.includes(fx.amd64.layers[1] as string))
    assert.equal(ended.includes(fx.amd64.layers[1] as Digest), false)
  })

  test('a flipped byte is caught even when onBlob does not read the body', async () => {
    const file = join(dir, 'flipped-unread.tar')
    await writeBundle({ file, images: fx.images, blobs: fx.list(), open: fx.open })
    const bytes = await readFile(file)
    const at = bytes.indexOf((fx.blobs.get(fx.arm64.layers[1] as Digest) as Buffer).subarray(0, 64))
    bytes[at + 5] = (bytes[at + 5] ?? 0) ^ 0x01
    await writeFile(file, bytes)
    await assert.rejects(readBundle(file, { onBlob: async () => {} }), isBundleError('ERR_BUNDLE_DIGEST'))
  })

  const broken: Array<[string, (file: string) => Promise<void>, RegExp]> = [
    ['a file cut in half', async (f) => { await truncate(f, Math.floor((await stat(f)).size / 2)) }, /truncated/],
    ['a file cut at an entry boundary', async (f) => { await truncate(f, (await stat(f)).size - 1024) }, /truncated/],
    ['a random non-tar file', async (f) => { await writeFile(f, randomBytes(100_000)) }, /not a tar/],
    ['an empty file', async (f) => { await writeFile(f, Buffer.alloc(0)) }, /truncated|not an OCI/],
    ['a zstd file cut in half', async (f) => { await truncate(f, Math.floor((await stat(f)).size / 2)) }, /truncated|zstd/],
  ]
  for (const [name, damage, message] of broken) {
    test(`${name} → ERR_BUNDLE_INVALID`, async () => {
      const file = join(dir, name.includes('zstd') ? 'broken.tar.zst' : 'broken.tar')
      await writeBundle({ file, images: fx.images, blobs: fx.list(), open: fx.open })
      await damage(file)
      await assert.rejects(readBundle(file, { onBlob: async (_d, _s, body) => { await readAll(body) } }), (err: unknown) => {
        isBundleError('ERR_BUNDLE_INVALID')(err)
        assert.match((err as Error).message, message)
        return true
      })
    })
  }

  test('a tar without oci-layout or index.json → ERR_BUNDLE_INVALID', async () => {
    const { pack } = await import('tar-stream')
    const p = pack()
    p.entry({ name: 'hello.txt' }, 'hi')
    p.finalize()
    const file = join(dir, 'foreign.tar')
    await writeFile(file, await readAll(Readable.from(p)))
    await assert.rejects(readBundle(file, { onBlob: async () => {} }), (err: unknown) => isBundleError('ERR_BUNDLE_INVALID')(err) && /no oci-layout/.test((err as Error).message))
  })

  test('writer: bytes that do not match the digest → ERR_BUNDLE_DIGEST and no file left', async () => {
    for (const [name, tamper] of [['wrong.tar', (b: Buffer) => { const c = Buffer.from(b); c[10] = (c[10] ?? 0) ^ 1; return c }], ['short.tar', (b: Buffer) => b.subarray(1)], ['long.tar.zst', (b: Buffer) => Buffer.concat([b, Buffer.from('x')])]] as const) {
      const file = join(dir, name)
      const victim = fx.amd64.layers[1] as Digest
      await assert.rejects(writeBundle({
        file, images: fx.images, blobs: fx.list(),
        open: async (d) => d === victim ? Readable.from([tamper(fx.blobs.get(d) as Buffer)]) : await fx.open(d),
      }), (err: unknown) => isBundleError('ERR_BUNDLE_DIGEST')(err) && (err as Error).message.includes(victim))
      const left = (await readdir(dir)).filter((f) => f.startsWith(name))
      assert.deepEqual(left, [])
    }
  })

  test('writer: a failing part removes the parts already written', async () => {
    const victim = fx.arm64.layers[1] as Digest
    await assert.rejects(writeBundle({
      file: join(dir, 'failing.tar'), images: fx.images, blobs: fx.list(), maxPartSize: 250_000,
      open: async (d) => d === victim ? Readable.from([Buffer.from('nope')]) : await fx.open(d),
    }), isBundleError('ERR_BUNDLE_DIGEST'))
    assert.deepEqual((await readdir(dir)).filter((f) => f.startsWith('failing')), [])
  })

  test('flotilla-bundle.json round-trips through parseBundleInfo', async () => {
    const file = join(dir, 'info.tar')
    await writeBundle({ file, images: fx.images, blobs: fx.list(), open: fx.open })
    const { contents } = await readInto(file)
    assert.ok(contents.info !== undefined)
    assert.deepEqual(parseBundleInfo(Buffer.from(JSON.stringify(contents.info))), contents.info)
    assert.equal(digestOf(fx.index.bytes), fx.index.digest)
  })
})
