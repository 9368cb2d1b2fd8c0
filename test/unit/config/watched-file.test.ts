import assert from 'node:assert/strict'
import { mkdir, rename, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { pino } from 'pino'
import { WatchedFile } from '../../../src/config/watched-file.js'
import { parsePrecacheSpec, type PrecacheSpec } from '../../../src/precache/precache-spec.js'
import { makeTempDir, type TempDir } from '../../helpers/temp-dir.js'
import { waitFor } from '../../helpers/wait-for.js'

/** A log that keeps its lines. */
function recordingLogger (): { logger: pino.Logger, lines: Array<{ level: number, msg: string }> } {
  const lines: Array<{ level: number, msg: string }> = []
  const logger = pino({ level: 'info' }, { write: (s: string) => { lines.push(JSON.parse(s) as { level: number, msg: string }) } })
  return { logger, lines }
}

describe('WatchedFile (the pre-cache file)', () => {
  let tmp: TempDir
  const files: Array<WatchedFile<PrecacheSpec>> = []

  before(async () => { tmp = await makeTempDir('precache-file') })
  after(async () => {
    for (const f of files) f.close()
    await tmp.cleanup()
  })

  const names = (spec: PrecacheSpec | undefined): string[] => spec?.sets.map((s) => s.name) ?? []

  it('follows a ConfigMap update (a swapped symlink), and keeps the last good sets through a broken version', async () => {
    // What the kubelet writes for a ConfigMap volume: precache.yaml -> ..data/precache.yaml, ..data -> ..<timestamp>.
    const dir = join(tmp.path, 'configmap')
    await mkdir(join(dir, '..v1'), { recursive: true })
    await writeFile(join(dir, '..v1', 'precache.yaml'), 'sets: [{ name: one }]')
    await symlink('..v1', join(dir, '..data'))
    await symlink('..data/precache.yaml', join(dir, 'precache.yaml'))
    const swap = async (version: string, text: string): Promise<void> => {
      await mkdir(join(dir, version))
      await writeFile(join(dir, version, 'precache.yaml'), text)
      await symlink(version, join(dir, '..data_tmp'))
      await rename(join(dir, '..data_tmp'), join(dir, '..data'))
    }

    let latest: PrecacheSpec | undefined
    const { logger, lines } = recordingLogger()
    // A poll slower than the test's bounds: the directory watch is what must see the swaps.
    const file = new WatchedFile({ path: join(dir, 'precache.yaml'), logger, what: 'pre-cache file', parse: parsePrecacheSpec, onValue: (s) => { latest = s }, pollMs: 60_000 })
    files.push(file)
    await file.start()
    assert.deepEqual(names(latest), ['one'])
    assert.equal(file.error, undefined)

    await swap('..v2', 'sets: [{ name: one }, { name: two }]')
    await waitFor(() => names(latest).length === 2, { timeoutMs: 5000, intervalMs: 10, what: 'the swapped version read' })

    await swap('..v3', 'sets: [ {')
    await waitFor(() => file.error !== undefined, { timeoutMs: 5000, intervalMs: 10, what: 'the broken version reported' })
    assert.match(file.error ?? '', /^precache\.yaml: not valid YAML/)
    assert.deepEqual(names(latest), ['one', 'two'], 'the last good sets stay in force')
    const errors = lines.filter((l) => l.level >= 50)
    assert.equal(errors.length, 1)
    assert.match(errors[0]?.msg ?? '', /^pre-cache file not taken: precache\.yaml: not valid YAML/)

    await swap('..v4', 'sets: [{ name: three }]')
    await waitFor(() => names(latest)[0] === 'three', { timeoutMs: 5000, intervalMs: 10, what: 'the repaired version read' })
    assert.equal(file.error, undefined)
  })

  it('a missing file is reported and read once it appears (the poll finds it)', async () => {
    const path = join(tmp.path, 'later', 'precache.yaml')
    await mkdir(join(tmp.path, 'later'))
    let latest: PrecacheSpec | undefined
    const file = new WatchedFile({ path, logger: pino({ level: 'silent' }), what: 'pre-cache file', parse: parsePrecacheSpec, onValue: (s) => { latest = s }, pollMs: 50 })
    files.push(file)
    await file.start()
    assert.match(file.error ?? '', /cannot read .*ENOENT/)
    assert.equal(latest, undefined)
    await writeFile(path, 'sets: [{ name: late }]')
    await waitFor(() => names(latest)[0] === 'late', { timeoutMs: 5000, intervalMs: 10, what: 'the file read once written' })
    assert.equal(file.error, undefined)
  })
})
