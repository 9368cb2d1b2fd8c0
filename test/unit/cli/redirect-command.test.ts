// `flotilla redirect explain` run as the user runs it: the region a client address is sent to.
import assert from 'node:assert/strict'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { flotillaCommand } from '../../helpers/flotilla-agent.js'
import { runCommand, type CommandResult } from '../../helpers/run-command.js'
import { makeTempDir, type TempDir } from '../../helpers/temp-dir.js'

const CONFIG = `role: redirector
redirect:
  origin: https://registry.example.com
  regions:
    - name: eu-west
      cidrs: [10.1.0.0/16, 2001:db8:1::/48]
      blobBase: https://eu-west.mirror.example.com
    - name: eu-west-1a
      cidrs: [10.1.4.0/24]
      blobBase: https://eu-west-1a.mirror.example.com
`

describe('flotilla redirect explain', () => {
  let tmp: TempDir
  let config: string
  before(async () => {
    tmp = await makeTempDir('redirect-cli')
    config = join(tmp.path, 'config.yaml')
    await writeFile(config, CONFIG)
  })
  after(async () => { await tmp.cleanup() })

  const explain = async (...args: string[]): Promise<CommandResult> => {
    const [cmd, argv] = flotillaCommand(['redirect', 'explain', ...args])
    return await runCommand(cmd, argv, { timeoutMs: 30_000 })
  }

  test('the longest prefix wins; outside every region, the origin', async () => {
    const cases: Array<[string, RegExp]> = [
      ['10.1.4.7', /^10\.1\.4\.7: region eu-west-1a; blobs from https:\/\/eu-west-1a\.mirror\.example\.com /],
      ['10.1.9.1', /^10\.1\.9\.1: region eu-west; blobs from https:\/\/eu-west\.mirror\.example\.com /],
      ['2001:db8:1::7', /^2001:db8:1::7: region eu-west; /],
      ['192.0.2.1', /^192\.0\.2\.1: no region; blobs from the origin https:\/\/registry\.example\.com$/m],
    ]
    for (const [address, expected] of cases) {
      const r = await explain(address, '-c', config)
      assert.equal(r.code, 0, r.stderr)
      assert.match(r.stdout, expected)
    }
  })

  test('a bad address or a bad table: one line, exit 1', async () => {
    const bad = await explain('10.1.4', '-c', config)
    assert.equal(bad.code, 1)
    assert.equal(bad.stderr, 'flotilla: "10.1.4" is not an IPv4 or IPv6 address\n')
    const broken = join(tmp.path, 'broken.yaml')
    await writeFile(broken, CONFIG.replace('10.1.4.0/24', '10.1.4.0/99'))
    const r = await explain('10.1.4.7', '-c', broken)
    assert.equal(r.code, 1)
    assert.match(r.stderr, /^flotilla: redirect\.regions: eu-west-1a: "10\.1\.4\.0\/99" is not an IPv4 or IPv6 CIDR\n$/)
  })
})
