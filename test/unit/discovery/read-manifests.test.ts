import assert from 'node:assert/strict'
import { mkdir, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { afterEach, beforeEach, describe, test } from 'node:test'
import { ConfigError } from '../../../src/config/config-error.js'
import { MAX_MANIFEST_BYTES, readManifestDocuments } from '../../../src/discovery/read-manifests.js'
import { makeTempDir, type TempDir } from '../../helpers/temp-dir.js'

function stdinOf (text: string): NodeJS.ReadableStream {
  return Readable.from([Buffer.from(text)])
}

async function assertConfigError (promise: Promise<unknown>, pattern: RegExp): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`)
    assert.equal(err.code, 'ERR_CONFIG')
    assert.match(err.message, pattern)
    assert.doesNotMatch(err.message, /\n/)
    return true
  })
}

void describe('readManifestDocuments', () => {
  let tmp: TempDir
  beforeEach(async () => { tmp = await makeTempDir('read-manifests') })
  afterEach(async () => { await tmp.cleanup() })

  void test('multi-document YAML: every document in order, empty and comment-only ones left out', async () => {
    const file = join(tmp.path, 'all.yaml')
    await writeFile(file, '---\nkind: A\n---\n---\n# nothing here\n---\nkind: B\nlist: [1, 2]\n...\n')
    assert.deepEqual(await readManifestDocuments([file]), [{ kind: 'A' }, { kind: 'B', list: [1, 2] }])
  })

  void test('a named file is read whatever its extension; JSON is YAML', async () => {
    const file = join(tmp.path, 'rendered.txt')
    await writeFile(file, '{"kind": "Pod", "spec": {"containers": []}}')
    assert.deepEqual(await readManifestDocuments([file]), [{ kind: 'Pod', spec: { containers: [] } }])
  })

  void test('a directory: its .yaml, .yml and .json files, recursively, sorted by path', async () => {
    await mkdir(join(tmp.path, 'b', 'deep'), { recursive: true })
    await mkdir(join(tmp.path, 'a'))
    await writeFile(join(tmp.path, 'z.yml'), 'n: z.yml')
    await writeFile(join(tmp.path, 'b', 'deep', 'x.JSON'), '{"n": "b/deep/x.JSON"}')
    await writeFile(join(tmp.path, 'b', 'c.yaml'), 'n: b/c.yaml\n---\nn: b/c.yaml#2')
    await writeFile(join(tmp.path, 'a', 'm.yaml'), 'n: a/m.yaml')
    await writeFile(join(tmp.path, 'a', 'README.md'), '# not a manifest: [')
    await writeFile(join(tmp.path, 'a', 'values.yaml.bak'), 'n: never')
    await symlink(join(tmp.path, 'a', 'm.yaml'), join(tmp.path, 'link.yaml'))
    await symlink(join(tmp.path, 'gone.yaml'), join(tmp.path, 'dangling.yaml'))
    const docs = await readManifestDocuments([tmp.path])
    assert.deepEqual(docs, [
      { n: 'a/m.yaml' }, { n: 'b/c.yaml' }, { n: 'b/c.yaml#2' }, { n: 'b/deep/x.JSON' }, { n: 'a/m.yaml' }, { n: 'z.yml' },
    ])
  })

  void test('stdin with "-", between files in the order given', async () => {
    const first = join(tmp.path, 'first.yaml')
    const last = join(tmp.path, 'last.yaml')
    await writeFile(first, 'n: first')
    await writeFile(last, 'n: last')
    const docs = await readManifestDocuments([first, '-', last], stdinOf('# Source: chart/templates/a.yaml\nn: stdin-1\n---\nn: stdin-2\n'))
    assert.deepEqual(docs, [{ n: 'first' }, { n: 'stdin-1' }, { n: 'stdin-2' }, { n: 'last' }])
  })

  void test('duplicate keys, a common bug of rendered charts, are tolerated as kubectl does: the last wins', async () => {
    assert.deepEqual(await readManifestDocuments(['-'], stdinOf('kind: Pod\nkind: Deployment\n')), [{ kind: 'Deployment' }])
  })

  void test('a document that does not parse: one line naming the file, the line and the column', async () => {
    const file = join(tmp.path, 'broken.yaml')
    await writeFile(file, 'kind: A\n---\nkind: B\nspec:\n  containers: [a, b\n  next: 1\n')
    await assertConfigError(readManifestDocuments([file]), new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}:6:\\d+: not valid YAML: \\S`))
  })

  void test('a parse error on stdin names stdin and the line', async () => {
    await assertConfigError(readManifestDocuments(['-'], stdinOf('a: 1\n---\nb: 1\nc: d: e\n')), /^stdin:4:4: not valid YAML: Nested mappings are not allowed/)
  })

  void test('a tab-indented document names its line', async () => {
    await assertConfigError(readManifestDocuments(['-'], stdinOf('a:\n\tb: 1\n')), /^stdin:2:\d+: not valid YAML: /)
  })

  void test('a path that does not exist', async () => {
    const missing = join(tmp.path, 'missing.yaml')
    await assertConfigError(readManifestDocuments([missing]), new RegExp(`^${missing.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: cannot read manifests \\(ENOENT: no such file or directory\\)$`))
  })

  void test('"-" twice is refused', async () => {
    await assertConfigError(readManifestDocuments(['-', '-'], stdinOf('a: 1')), /"-" \(stdin\) can be given only once/)
  })

  void test('input larger than the bound is refused without reading it all', async () => {
    let produced = 0
    const chunk = Buffer.alloc(1024 * 1024, 0x61)
    const endless = new Readable({
      read () {
        produced += chunk.byteLength
        this.push(chunk)
      },
    })
    await assertConfigError(readManifestDocuments(['-'], endless), /^stdin: larger than 64 MiB/)
    assert.ok(produced <= MAX_MANIFEST_BYTES + 4 * chunk.byteLength, `read ${produced} bytes`)
  })

  void test('nothing at all: no documents', async () => {
    const empty = join(tmp.path, 'empty.yaml')
    await writeFile(empty, '')
    assert.deepEqual(await readManifestDocuments([empty, tmp.path]), [])
  })
})
