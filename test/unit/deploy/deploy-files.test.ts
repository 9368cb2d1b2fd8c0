// deploy/ is generated: the checked-in files must be what renderDeployFiles produces (as the README's config table
// must be what its options produce). Fix with: node --import tsx scripts/render-deploy.ts --write
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { readdir, readFile } from 'node:fs/promises'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, test } from 'node:test'
import { parse as parseYaml } from 'yaml'
import { DEFAULT_IMAGE, FLOTILLA_VERSION, IMAGE_REPOSITORY } from '../../../src/deploy/default-image.js'
import { renderDeployFiles } from '../../../src/deploy/deploy-files.js'

const ROOT = fileURLToPath(new URL('../../../', import.meta.url))
const FIX = 'deploy/ is out of date: run node --import tsx scripts/render-deploy.ts --write'

describe('deploy/', () => {
  const files = renderDeployFiles()

  test('every checked-in file is the rendered one', async () => {
    for (const file of files) {
      const actual = await readFile(join(ROOT, file.path), 'utf8').catch(() => undefined)
      assert.ok(actual === file.content, `${file.path}: ${FIX}`)
    }
  })

  test('no other file under deploy/', async () => {
    const entries = await readdir(join(ROOT, 'deploy'), { recursive: true, withFileTypes: true })
    const present = entries.filter((e) => e.isFile()).map((e) => relative(ROOT, join(e.parentPath, e.name))).sort()
    assert.deepEqual(present, files.map((f) => f.path).sort(), FIX)
  })

  test('each kustomization lists the manifests beside it', () => {
    for (const k of files.filter((f) => f.path.endsWith('/kustomization.yaml'))) {
      const dir = k.path.slice(0, -'kustomization.yaml'.length)
      const { resources } = parseYaml(k.content) as { resources: string[] }
      for (const r of resources) assert.ok(files.some((f) => f.path === dir + r), `${k.path} lists ${r}`)
    }
  })

  test('the default image is the repository tagged with package.json\'s version', async () => {
    const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { version: string }
    assert.equal(FLOTILLA_VERSION, pkg.version)
    assert.equal(DEFAULT_IMAGE, `${IMAGE_REPOSITORY}:${pkg.version}`)
    assert.ok(files.filter((f) => f.path.endsWith('/agent.yaml')).every((f) => f.content.includes(`image: ${DEFAULT_IMAGE}\n`)))
  })

  const kubectl = spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8' })
  test('kubectl kustomize builds every directory (when kubectl is installed)', { skip: kubectl.status !== 0 ? 'no kubectl' : false }, () => {
    for (const k of files.filter((f) => f.path.endsWith('/kustomization.yaml'))) {
      const dir = join(ROOT, k.path, '..')
      const r = spawnSync('kubectl', ['kustomize', dir], { encoding: 'utf8' })
      assert.equal(r.status, 0, `${k.path}: ${r.stderr}`)
      assert.match(r.stdout, /^kind: /m)
    }
  })
})
