import assert from 'node:assert/strict'
import { readdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, test } from 'node:test'
import type { Digest } from '../../../src/oci/index.js'
import { FileTagIndex } from '../../../src/store/file-tag-index.js'
import { MemoryTagIndex } from '../../../src/store/memory-tag-index.js'
import type { TagIndex, TagRecord } from '../../../src/store/tag-index.js'
import { makeTempDir } from '../../helpers/temp-dir.js'

const record = (n: number, extra: Partial<TagRecord> = {}): TagRecord => ({
  digest: `sha256:${n.toString(16).padStart(64, '0')}` as Digest,
  mediaType: 'application/vnd.oci.image.index.v1+json',
  size: 100 + n,
  fetchedAt: 1_700_000_000_000 + n,
  ...extra,
})

async function entries (index: TagIndex): Promise<string[]> {
  const out: string[] = []
  for await (const e of index.entries()) out.push(`${e.registry} ${e.repository} ${e.tag} ${e.record.size}`)
  return out.sort()
}

const adapters: Array<[string, () => Promise<{ index: TagIndex, cleanup: () => Promise<void> }>]> = [
  ['MemoryTagIndex', async () => ({ index: new MemoryTagIndex(), cleanup: async () => {} })],
  ['FileTagIndex', async () => {
    const dir = await makeTempDir('tag-index')
    return { index: await FileTagIndex.open(dir.path), cleanup: () => dir.cleanup() }
  }],
]

for (const [name, make] of adapters) {
  describe(`TagIndex: ${name}`, () => {
    const withIndex = (fn: (index: TagIndex) => Promise<void>) => async (): Promise<void> => {
      const { index, cleanup } = await make()
      try {
        await fn(index)
      } finally {
        await cleanup()
      }
    }

    test('set, get, overwrite, delete', withIndex(async (index) => {
      assert.equal(await index.get('docker.io', 'library/busybox', 'latest'), undefined)
      await index.set('docker.io', 'library/busybox', 'latest', record(1))
      assert.deepEqual(await index.get('docker.io', 'library/busybox', 'latest'), record(1))
      await index.set('docker.io', 'library/busybox', 'latest', record(2, { etag: '"abc"' }))
      assert.deepEqual(await index.get('docker.io', 'library/busybox', 'latest'), record(2, { etag: '"abc"' }))
      assert.equal(await index.delete('docker.io', 'library/busybox', 'latest'), true)
      assert.equal(await index.delete('docker.io', 'library/busybox', 'latest'), false)
      assert.equal(await index.get('docker.io', 'library/busybox', 'latest'), undefined)
    }))

    test('list is sorted and scoped to one registry and repository', withIndex(async (index) => {
      for (const tag of ['v2', 'latest', 'v10', '1.0', 'V1']) await index.set('docker.io', 'library/busybox', tag, record(1))
      await index.set('docker.io', 'library/busybox/extra', 'x', record(2))
      await index.set('docker.io', 'library/busy', 'y', record(3))
      await index.set('ghcr.io', 'library/busybox', 'z', record(4))
      assert.deepEqual(await index.list('docker.io', 'library/busybox'), ['1.0', 'V1', 'latest', 'v10', 'v2'])
      assert.deepEqual(await index.list('docker.io', 'library/busy'), ['y'])
      assert.deepEqual(await index.list('ghcr.io', 'library/busybox'), ['z'])
      assert.deepEqual(await index.list('quay.io', 'library/busybox'), [])
    }))

    test('registries with ports; entries split keys back into their parts', withIndex(async (index) => {
      await index.set('localhost:5000', 'a/b', 'v1', record(1))
      await index.set('[::1]:5000', 'c', 'v2', record(2))
      await index.set('docker.io', 'library/busybox', 'latest', record(3))
      assert.deepEqual(await index.list('localhost:5000', 'a/b'), ['v1'])
      assert.deepEqual(await index.get('localhost:5000', 'a/b', 'v1'), record(1))
      assert.deepEqual(await entries(index), [
        '[::1]:5000 c v2 102',
        'docker.io library/busybox latest 103',
        'localhost:5000 a/b v1 101',
      ])
    }))
  })
}

describe('FileTagIndex persistence', () => {
  test('records survive a reopen, deletions too', async () => {
    const dir = await makeTempDir('tag-index')
    try {
      const first = await FileTagIndex.open(dir.path)
      await first.set('docker.io', 'library/busybox', 'latest', record(1, { etag: '"e1"' }))
      await first.set('docker.io', 'library/busybox', 'v1', record(2))
      await first.set('localhost:5000', 'a/b', 'v1', record(3))
      await first.delete('docker.io', 'library/busybox', 'v1')

      const second = await FileTagIndex.open(dir.path)
      assert.deepEqual(await second.get('docker.io', 'library/busybox', 'latest'), record(1, { etag: '"e1"' }))
      assert.equal(await second.get('docker.io', 'library/busybox', 'v1'), undefined)
      assert.deepEqual(await second.list('localhost:5000', 'a/b'), ['v1'])
      assert.deepEqual(await readdir(dir.path), ['tags.json'], 'no temporary file left behind')
    } finally {
      await dir.cleanup()
    }
  })

  test('concurrent sets are all persisted', async () => {
    const dir = await makeTempDir('tag-index')
    try {
      const index = await FileTagIndex.open(dir.path)
      await Promise.all(Array.from({ length: 25 }, (_, i) => index.set('ghcr.io', 'o/r', `t${String(i).padStart(2, '0')}`, record(i))))
      const reopened = await FileTagIndex.open(dir.path)
      assert.deepEqual(await reopened.list('ghcr.io', 'o/r'), Array.from({ length: 25 }, (_, i) => `t${String(i).padStart(2, '0')}`))
      assert.deepEqual(await reopened.get('ghcr.io', 'o/r', 't24'), record(24))
    } finally {
      await dir.cleanup()
    }
  })

  test('a delete of an unknown tag does not rewrite the file', async () => {
    const dir = await makeTempDir('tag-index')
    try {
      const index = await FileTagIndex.open(dir.path)
      assert.equal(await index.delete('ghcr.io', 'o/r', 'nope'), false)
      assert.deepEqual(await readdir(dir.path), [])
    } finally {
      await dir.cleanup()
    }
  })

  const corrupt: Array<[string, string, RegExp]> = [
    ['truncated JSON', '{"version":1,"tags":{"docker.io/library/busybox:latest":{"dig', /tags\.json is not valid JSON; move it aside/],
    ['empty file', '', /tags\.json is not valid JSON/],
    ['binary garbage', '\u0000\u0001\u0002', /tags\.json is not valid JSON/],
    ['JSON null', 'null', /tags\.json is not a JSON object; move it aside/],
    ['JSON array', '[]', /tags\.json is not a JSON object/],
  ]
  for (const [name, text, message] of corrupt) {
    test(`a corrupt file (${name}) is refused with a clear error`, async () => {
      const dir = await makeTempDir('tag-index')
      try {
        await writeFile(join(dir.path, 'tags.json'), text)
        await assert.rejects(FileTagIndex.open(dir.path), (err: Error) => {
          assert.match(err.message, message)
          assert.ok(err.message.includes(join(dir.path, 'tags.json')), 'the message names the file')
          return true
        })
        assert.equal(await readFile(join(dir.path, 'tags.json'), 'utf8'), text, 'the file is left alone')
      } finally {
        await dir.cleanup()
      }
    })
  }

  test('records with bad fields are skipped, good ones kept', async () => {
    const dir = await makeTempDir('tag-index')
    try {
      await writeFile(join(dir.path, 'tags.json'), JSON.stringify({
        version: 1,
        tags: {
          'docker.io/library/busybox:good': record(1),
          'docker.io/library/busybox:bad-digest': { ...record(2), digest: 'sha256:nope' },
          'docker.io/library/busybox:no-size': { ...record(3), size: undefined },
          'docker.io/library/busybox:bad-time': { ...record(4), fetchedAt: 'yesterday' },
          'docker.io/library/busybox:not-an-object': 7,
          'docker.io/library/busybox:null': null,
        },
      }))
      const index = await FileTagIndex.open(dir.path)
      assert.deepEqual(await index.list('docker.io', 'library/busybox'), ['good'])
    } finally {
      await dir.cleanup()
    }
  })
})
