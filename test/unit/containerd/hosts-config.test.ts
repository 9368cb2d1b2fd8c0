import assert from 'node:assert/strict'
import { chmod, mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, test } from 'node:test'
import { BACKUP_SUFFIX, NO_ORIGINAL_SUFFIX, configureHosts, restoreHosts } from '../../../src/containerd/hosts-config.js'
import { HostsTomlError, parseHostsToml } from '../../../src/containerd/hosts-toml.js'
import { makeTempDir, type TempDir } from '../../helpers/temp-dir.js'

const MIRROR = 'http://127.0.0.1:5000'
const ORIGINAL = `# our private registry, do not lose this comment
server = "https://registry.corp.example"
ca = "/etc/certs/corp-ca.crt"

[host."https://mirror.corp.example"]
  capabilities = ["pull", "resolve"]
  ca = "/etc/certs/mirror.pem"
`

void describe('configureHosts / restoreHosts', () => {
  let tmp: TempDir
  let certsDir: string
  beforeEach(async () => {
    tmp = await makeTempDir('hosts-config')
    certsDir = join(tmp.path, 'certs.d')
  })
  afterEach(async () => { await tmp.cleanup() })

  async function writeOriginal (registry: string, content = ORIGINAL): Promise<string> {
    await mkdir(join(certsDir, registry), { recursive: true })
    const path = join(certsDir, registry, 'hosts.toml')
    await writeFile(path, content)
    await chmod(path, 0o640)
    return path
  }

  void test('no registries means _default, with no server; docker.io gets registry-1.docker.io', async () => {
    const [def] = await configureHosts({ certsDir, mirrorUrl: MIRROR })
    assert.equal(def?.registry, '_default')
    assert.equal(def?.action, 'created')
    assert.equal(parseHostsToml(await readFile(join(certsDir, '_default', 'hosts.toml'), 'utf8')).server, undefined)
    const [hub] = await configureHosts({ certsDir, mirrorUrl: MIRROR, registries: ['index.docker.io'] })
    assert.equal(hub?.registry, 'docker.io')
    assert.equal(parseHostsToml(hub?.content ?? '').server, 'https://registry-1.docker.io')
  })

  void test('upstreams override the server', async () => {
    const [r] = await configureHosts({ certsDir, mirrorUrl: MIRROR, registries: ['127.0.0.1:5001'], upstreams: new Map([['127.0.0.1:5001', 'http://127.0.0.1:5001']]) })
    assert.equal(parseHostsToml(r?.content ?? '').server, 'http://127.0.0.1:5001')
  })

  void test('an existing custom file: backed up byte for byte, merged after ours, restored exactly', async () => {
    const path = await writeOriginal('registry.corp.example')
    const [r] = await configureHosts({ certsDir, mirrorUrl: MIRROR, registries: ['registry.corp.example'] })
    assert.equal(r?.action, 'updated')
    assert.equal(r?.hasOriginal, true)
    assert.equal(r?.backupPath, path + BACKUP_SUFFIX)
    assert.equal(await readFile(path + BACKUP_SUFFIX, 'utf8'), ORIGINAL)
    const written = parseHostsToml(await readFile(path, 'utf8'))
    assert.equal(written.server, 'https://registry.corp.example')
    assert.deepEqual(written.topLevel, { ca: '/etc/certs/corp-ca.crt' })
    assert.deepEqual(written.hosts.map(([url]) => url), [MIRROR, 'https://mirror.corp.example'])

    const [restored] = await restoreHosts({ certsDir, registries: ['registry.corp.example'] })
    assert.equal(restored?.action, 'restored')
    assert.equal(await readFile(path, 'utf8'), ORIGINAL)
    assert.equal((await stat(path)).mode & 0o777, 0o640)
    assert.deepEqual((await readdir(join(certsDir, 'registry.corp.example'))).sort(), ['hosts.toml'])
  })

  void test('idempotent: a second run writes the same file and keeps the first backup', async () => {
    const path = await writeOriginal('docker.io')
    const [first] = await configureHosts({ certsDir, mirrorUrl: MIRROR, registries: ['docker.io'] })
    const afterFirst = await readFile(path, 'utf8')
    const [second] = await configureHosts({ certsDir, mirrorUrl: MIRROR, registries: ['docker.io'] })
    assert.equal(second?.action, 'unchanged')
    assert.equal(second?.content, first?.content)
    assert.equal(await readFile(path, 'utf8'), afterFirst)
    assert.equal(await readFile(path + BACKUP_SUFFIX, 'utf8'), ORIGINAL)
    // A new agent address re-renders from the backup, not from our previous output.
    const [moved] = await configureHosts({ certsDir, mirrorUrl: 'http://127.0.0.1:6000', registries: ['docker.io'] })
    assert.equal(moved?.action, 'updated')
    assert.deepEqual(parseHostsToml(moved?.content ?? '').hosts.map(([url]) => url), ['http://127.0.0.1:6000', 'https://mirror.corp.example'])
    await restoreHosts({ certsDir })
    assert.equal(await readFile(path, 'utf8'), ORIGINAL)
  })

  void test('no original: a marker is recorded and restore removes our file and the directory we created', async () => {
    await mkdir(certsDir)
    const [r] = await configureHosts({ certsDir, mirrorUrl: MIRROR, registries: ['ghcr.io'] })
    assert.equal(r?.hasOriginal, false)
    assert.equal(r?.backupPath, undefined)
    const dir = join(certsDir, 'ghcr.io')
    assert.deepEqual((await readdir(dir)).sort(), ['hosts.toml', `hosts.toml${NO_ORIGINAL_SUFFIX}`])
    await configureHosts({ certsDir, mirrorUrl: MIRROR, registries: ['ghcr.io'] })
    const restored = await restoreHosts({ certsDir })
    assert.deepEqual(restored.map((x) => [x.registry, x.action]), [['ghcr.io', 'removed']])
    assert.deepEqual(await readdir(certsDir), [])
  })

  void test('no original in an existing directory with certificates: the directory and its files stay', async () => {
    const dir = join(certsDir, 'quay.io')
    await mkdir(dir, { recursive: true })
    await writeFile(join(dir, 'ca.crt'), 'PEM')
    await configureHosts({ certsDir, mirrorUrl: MIRROR, registries: ['quay.io'] })
    await restoreHosts({ certsDir, registries: ['quay.io'] })
    assert.deepEqual(await readdir(dir), ['ca.crt'])
  })

  void test('dry run returns the contents and touches nothing', async () => {
    const path = await writeOriginal('docker.io')
    const results = await configureHosts({ certsDir, mirrorUrl: MIRROR, registries: ['docker.io', 'ghcr.io'], dryRun: true })
    assert.deepEqual(results.map((r) => [r.registry, r.action]), [['docker.io', 'updated'], ['ghcr.io', 'created']])
    assert.equal(parseHostsToml(results[0]?.content ?? '').hosts[0]?.[0], MIRROR)
    assert.equal(await readFile(path, 'utf8'), ORIGINAL)
    assert.deepEqual(await readdir(certsDir), ['docker.io'])
    assert.deepEqual(await readdir(join(certsDir, 'docker.io')), ['hosts.toml'])
  })

  void test('an unparsable original fails the whole call before anything is written', async () => {
    await writeOriginal('docker.io', '[host."broken"\n')
    await assert.rejects(configureHosts({ certsDir, mirrorUrl: MIRROR, registries: ['ghcr.io', 'docker.io'] }), (err: unknown) => err instanceof HostsTomlError && err.code === 'ERR_HOSTS_TOML_INVALID')
    assert.deepEqual(await readdir(certsDir), ['docker.io'])
    assert.deepEqual(await readdir(join(certsDir, 'docker.io')), ['hosts.toml'])
  })

  void test('restore of something never configured reports it and changes nothing', async () => {
    const path = await writeOriginal('docker.io')
    assert.deepEqual((await restoreHosts({ certsDir, registries: ['docker.io'] })).map((r) => r.action), ['not-configured'])
    assert.deepEqual(await restoreHosts({ certsDir: join(tmp.path, 'missing') }), [])
    assert.equal(await readFile(path, 'utf8'), ORIGINAL)
  })
})
