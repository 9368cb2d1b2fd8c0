// Durability beyond kill -9 (issue 8, defect 11): what the tag index asks of the kernel, seen through strace.
// A power cut cannot be simulated here; the syscalls that make the rename survive one can be observed.
import assert from 'node:assert/strict'
import { mkdir, readFile, realpath } from 'node:fs/promises'
import { join } from 'node:path'
import { test } from 'node:test'
import { runCommand } from '../../helpers/run-command.js'
import { makeTempDir } from '../../helpers/temp-dir.js'

const INDEX_MODULE = new URL('../../../src/store/file-tag-index.ts', import.meta.url).href
const hasStrace = (await runCommand('strace', ['-V'], { timeoutMs: 10_000 }).catch(() => undefined))?.code === 0

test('defect 11: tags.json is synced before it is renamed into place, and its directory after', { skip: hasStrace ? false : 'needs strace' }, async (t) => {
  const tmp = await makeTempDir('tag-index-fsync')
  t.after(tmp.cleanup)
  const dir = await realpath(tmp.path)
  const trace = join(dir, 'strace.out')
  const dataDir = join(dir, 'data')
  await mkdir(dataDir)
  const code = `
    const { FileTagIndex } = await import(${JSON.stringify(INDEX_MODULE)})
    const index = await FileTagIndex.open(process.argv[1])
    await index.set('r.io', 'repo', 'tag', { digest: 'sha256:' + '0'.repeat(64), mediaType: 'application/vnd.oci.image.index.v1+json', size: 1, fetchedAt: 1 })
  `
  const r = await runCommand('strace', ['-f', '-qq', '-y', '-e', 'trace=fsync,fdatasync,rename,renameat,renameat2', '-o', trace,
    process.execPath, '--import', 'tsx', '--input-type=module', '-e', code, dataDir], { timeoutMs: 60_000 })
  assert.equal(r.code, 0, r.stderr)
  // One line per call start ("<... resumed>" lines only finish a call already listed).
  const calls = (await readFile(trace, 'utf8')).split('\n').filter((line) => line.includes(dataDir) && !line.includes('resumed>'))
  const renameAt = calls.findIndex((line) => /rename/.test(line) && line.includes(`"${join(dataDir, 'tags.json')}"`))
  assert.ok(renameAt >= 0, `no rename onto tags.json:\n${calls.join('\n')}`)
  const tmpFile = /"([^"]+\.tmp)"/.exec(calls[renameAt] ?? '')?.[1]
  assert.ok(tmpFile !== undefined, calls[renameAt])
  const isSyncOf = (path: string) => (line: string): boolean => /f(data)?sync\(\d+</.test(line) && line.includes(`<${path}>`)
  assert.ok(calls.slice(0, renameAt).some(isSyncOf(tmpFile)), `the temp file is not synced before the rename:\n${calls.join('\n')}`)
  assert.ok(calls.slice(renameAt + 1).some(isSyncOf(dataDir)), `the directory is not synced after the rename:\n${calls.join('\n')}`)
})
