// `flotilla containerd check`: what it fails and what it warns about (what Spegel's users trip on), with
// containerd's and CRI's answers given, a real certs dir and a real (or silent) agent port.
import assert from 'node:assert/strict'
import { mkdir, writeFile } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import { createServer as createTcpServer, type Server as TcpServer } from 'node:net'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { checkHosts, type HostsCheck } from '../../../src/containerd/check-hosts.js'
import { makeTempDir, type TempDir } from '../../helpers/temp-dir.js'

describe('containerd check', () => {
  let tmp: TempDir
  let certsDir: string
  let agent: Server
  let silent: TcpServer
  let agentUrl: string
  let silentUrl: string

  before(async () => {
    tmp = await makeTempDir('check-hosts')
    certsDir = join(tmp.path, 'certs.d')
    agent = createServer((_req, res) => { res.writeHead(200, { 'content-length': '2' }); res.end('{}') }).listen(0, '127.0.0.1')
    // Accepts connections and never answers: what a port held by something else looks like to containerd.
    silent = createTcpServer(() => {}).listen(0, '127.0.0.1')
    await Promise.all([new Promise((resolve) => agent.once('listening', resolve)), new Promise((resolve) => silent.once('listening', resolve))])
    agentUrl = `http://127.0.0.1:${(agent.address() as AddressInfo).port}`
    silentUrl = `http://127.0.0.1:${(silent.address() as AddressInfo).port}`
    await mkdir(join(certsDir, 'registry.example.com'), { recursive: true })
    await writeFile(join(certsDir, 'registry.example.com', 'hosts.toml'), `server = "https://registry.example.com"\n[host."${agentUrl}"]\n  capabilities = ["pull", "resolve"]\n`)
  })
  after(async () => {
    agent.closeAllConnections()
    agent.close()
    silent.close()
    await tmp.cleanup()
  })

  const run = async (version: string, config: Record<string, unknown>, mirrorUrl = agentUrl): Promise<HostsCheck[]> => await checkHosts({
    socket: '/run/containerd/containerd.sock', certsDir, mirrorUrl, registries: ['registry.example.com'], timeoutMs: 300,
    containerd: { version: async () => ({ version, revision: 'x' }) },
    cri: { runtimeConfig: async () => config },
  })
  const line = (checks: HostsCheck[], name: string): HostsCheck | undefined => checks.find((c) => c.check === name)

  it('a correct wiring on containerd 1.6: everything passes, nothing to warn about', async () => {
    const checks = await run('1.6.20', { registry: { configPath: certsDir }, containerd: { discardUnpackedLayers: false } })
    assert.deepEqual(checks.map((c) => [c.check, c.ok, c.isWarning ?? false]), [
      ['containerd', true, false], ['cri config_path', true, false], ['hosts.toml registry.example.com', true, false], ['agent', true, false],
    ])
  })

  it('config_path listing several directories: a warning when ours is first, a failure when another comes first', async () => {
    const first = line(await run('1.7.20', { registry: { configPath: `${certsDir}:/etc/docker/certs.d` } }), 'cri config_path')
    assert.equal(first?.ok, true)
    assert.equal(first?.isWarning, true)
    assert.match(first?.detail ?? '', /several directories .* comes first/)
    const second = line(await run('1.7.20', { registry: { configPath: `/etc/docker/certs.d:${certsDir}` } }), 'cri config_path')
    assert.equal(second?.ok, false)
    assert.match(second?.detail ?? '', /\/etc\/docker\/certs\.d comes before/)
    const none = line(await run('1.7.20', { registry: { configPath: '' } }), 'cri config_path')
    assert.equal(none?.ok, false)
    assert.match(none?.detail ?? '', /no registry\.config_path/)
  })

  it('containerd 2.1+ without use_local_image_pull: a warning that hosts.toml is ignored by the transfer service', async () => {
    const checks = await run('v2.1.4', { registry: { configPath: certsDir } })
    const w = line(checks, 'cri transfer service')
    assert.equal(w?.isWarning, true)
    assert.match(w?.detail ?? '', /use_local_image_pull = true/)
    assert.equal(line(await run('2.1.4', { registry: { configPath: certsDir }, imageConfig: { useLocalImagePull: true } }), 'cri transfer service'), undefined)
    assert.equal(line(await run('2.0.5', { registry: { configPath: certsDir } }), 'cri transfer service'), undefined)
  })

  it('discard_unpacked_layers: a warning', async () => {
    const w = line(await run('1.7.20', { registry: { configPath: certsDir }, containerd: { discardUnpackedLayers: true } }), 'cri discard_unpacked_layers')
    assert.equal(w?.isWarning, true)
    assert.match(w?.detail ?? '', /deletes compressed layers/)
  })

  it('a mirror port that accepts connections but does not answer fails within the bound, saying so', async () => {
    const started = Date.now()
    const a = line(await run('1.6.20', { registry: { configPath: certsDir } }, silentUrl), 'agent')
    assert.ok(Date.now() - started < 3000)
    assert.equal(a?.ok, false)
    assert.match(a?.detail ?? '', /accepts connections but did not answer GET \/v2\/ within 300 ms/)
  })
})
