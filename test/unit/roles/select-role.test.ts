import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import type { ConfigOverrides } from '../../../src/config/config-overrides.js'
import { loadConfig } from '../../../src/config/load-config.js'
import { ROLES, selectRole, type RoleName } from '../../../src/roles/select-role.js'

// The same things start for the same configuration as before roles/: p2p and containerd make an agent.
void describe('selectRole', () => {
  const cases: Array<[string, ConfigOverrides, RoleName]> = [
    ['no configuration: the single-node mirror', {}, 'standalone'],
    ['a metrics listener changes nothing', { metricsListen: '127.0.0.1:0' }, 'standalone'],
    ['the node\'s containerd: an agent', { containerdSocket: '/run/containerd/containerd.sock' }, 'agent'],
    ['peers: an agent', { p2pListen: '/ip4/127.0.0.1/tcp/0' }, 'agent'],
    ['both: an agent', { containerdSocket: '/run/containerd/containerd.sock', p2pListen: '/ip4/127.0.0.1/tcp/0' }, 'agent'],
  ]
  for (const [name, overrides, role] of cases) {
    void test(name, async () => {
      const config = await loadConfig(undefined, overrides, {})
      assert.equal(selectRole(config), role)
      assert.equal(typeof ROLES[role], 'function')
    })
  }
})
