// The declarations in src/config/options.ts are the one place an option is written: these tests keep the
// README's table, the env variables and the flags derived from them, and show what adding an option takes.
import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { describe, test } from 'node:test'
import { z } from 'zod'
import { applyOverrides, envOverrides } from '../../../src/config/config-overrides.js'
import { schemaOf } from '../../../src/config/config-schema.js'
import { renderConfigTable, replaceConfigTable, TABLE_END, TABLE_START } from '../../../src/config/config-table.js'
import { option, overrideKey } from '../../../src/config/option.js'
import { OPTIONS } from '../../../src/config/options.js'

describe('README configuration table', () => {
  test('is the table rendered from the declarations (run `npm run docs:config` after changing an option)', async () => {
    const readme = await readFile(new URL('../../../README.md', import.meta.url), 'utf8')
    assert.equal(readme.split(TABLE_START).length, 2, 'one start marker')
    assert.equal(readme.split(TABLE_END).length, 2, 'one end marker')
    assert.equal(replaceConfigTable(readme, renderConfigTable()), readme)
  })

  test('has a row per option, naming its file key, flag and env variable', () => {
    const rows = renderConfigTable().split('\n').slice(2)
    assert.equal(rows.length, OPTIONS.length)
    for (const [i, d] of OPTIONS.entries()) {
      assert.ok(rows[i]?.startsWith(`| \`${d.name}\` |`), d.name)
      if ('env' in d) assert.ok(rows[i]?.includes(`\`${d.env}\``), d.name)
    }
  })

  test('a pipe in a cell is escaped, also in code', () => {
    const table = renderConfigTable([option('x', z.string(), { flag: '--x <a|b>', help: 'a | b' })])
    assert.equal(table.split('\n')[2], '| `x` | `--x <a\\|b>` | | | a \\| b |')
  })

  test('missing markers are an error, not a silent no-op', () => {
    assert.throws(() => replaceConfigTable('# no table here\n', 'x'), /markers/)
  })
})

describe('declarations', () => {
  test('names, flags, env variables and override keys are unique; every option has help', () => {
    for (const field of [(d: typeof OPTIONS[number]) => d.name, (d: typeof OPTIONS[number]) => overrideKey(d),
      (d: typeof OPTIONS[number]) => 'env' in d ? d.env : undefined, (d: typeof OPTIONS[number]) => 'flag' in d ? d.flag : undefined]) {
      const values = OPTIONS.map(field).filter((v) => v !== undefined)
      assert.equal(new Set(values).size, values.length, values.join(', '))
    }
    for (const d of OPTIONS) {
      assert.match(d.help, /\S/, d.name)
      if ('env' in d) assert.match(d.env, /^FLOTILLA_[A-Z0-9_]+$/, d.name)
    }
  })

  // The names env variables and flags had before they were derived: the same env variable still sets the same field.
  test('env variables map to the override keys they always had', () => {
    const env = Object.fromEntries(OPTIONS.filter((d) => 'env' in d).map((d) => [d.env, 'v']))
    assert.deepEqual(Object.keys(envOverrides(env)).sort(), [
      'allowCidr', 'bootstrap', 'clusterKeyFile', 'containerdContentDir', 'containerdNamespace', 'containerdSocket', 'credentialsFile',
      'dataDir', 'defaultRegistry', 'downloadMemory', 'firstByteTimeout', 'htpasswd', 'listen', 'logLevel', 'metricsListen', 'nodeLabels', 'ownerFanout', 'p2pListen',
      'peerAddress', 'precache', 'registries', 'role', 'sendToHolders', 'stallTimeout', 'storeMaxBytes', 'storeMaxDiskPercent', 'zeroCopy', 'zone',
    ])
    assert.deepEqual(Object.keys(env).sort(), [
      'FLOTILLA_ALLOW_CIDRS', 'FLOTILLA_BOOTSTRAP', 'FLOTILLA_CLUSTER_KEY_FILE', 'FLOTILLA_CONTAINERD_CONTENT_DIR', 'FLOTILLA_CONTAINERD_NAMESPACE',
      'FLOTILLA_CONTAINERD_SOCKET', 'FLOTILLA_CREDENTIALS_FILE', 'FLOTILLA_DATA_DIR', 'FLOTILLA_DEFAULT_REGISTRY', 'FLOTILLA_DOWNLOAD_MEMORY',
      'FLOTILLA_FIRST_BYTE_TIMEOUT', 'FLOTILLA_HTPASSWD', 'FLOTILLA_LISTEN', 'FLOTILLA_LOG_LEVEL', 'FLOTILLA_METRICS_LISTEN', 'FLOTILLA_NODE_LABELS',
      'FLOTILLA_OWNER_FANOUT', 'FLOTILLA_P2P_LISTEN', 'FLOTILLA_PEER_ADDRESS', 'FLOTILLA_PRECACHE', 'FLOTILLA_REGISTRIES', 'FLOTILLA_ROLE',
      'FLOTILLA_SEND_TO_HOLDERS', 'FLOTILLA_STALL_TIMEOUT', 'FLOTILLA_STORE_MAX_BYTES', 'FLOTILLA_STORE_MAX_DISK_PERCENT', 'FLOTILLA_ZERO_COPY', 'FLOTILLA_ZONE',
    ])
  })

  test('overrides land at the option\'s place in the file, leaving the rest of its section alone', () => {
    const file = { listen: 'a:1', tls: { cert: 'c' }, p2p: { zone: 'z', bootstrap: ['x'] } }
    assert.deepEqual(applyOverrides(file, { tlsKey: 'k', p2pListen: '/ip4/0.0.0.0/tcp/1', bootstrap: ['y', 'w'], ownerFanout: '8' }), {
      listen: 'a:1', tls: { cert: 'c', key: 'k' }, p2p: { zone: 'z', bootstrap: ['y', 'w'], listen: '/ip4/0.0.0.0/tcp/1', ownerFanout: '8' },
    })
    assert.deepEqual(file, { listen: 'a:1', tls: { cert: 'c' }, p2p: { zone: 'z', bootstrap: ['x'] } }, 'the input is not changed')
  })
})

// What adding an option takes: one declaration. Schema, default, env, flag override and docs follow from it.
describe('a new option, declared once', () => {
  const options = [
    option('listen', z.string(), { default: '127.0.0.1:5000', env: 'FLOTILLA_LISTEN', flag: '-l, --listen <host:port>', help: 'address' }),
    option('p2p.dialTimeout', z.coerce.number().int().min(1), {
      default: 3, env: 'FLOTILLA_P2P_DIAL_TIMEOUT', flag: '--p2p-dial-timeout <s>', help: 'how long a peer dial may take',
    }),
  ] as const

  test('is in the schema with its default, in its section', () => {
    const schema = schemaOf(options)
    assert.deepEqual(schema.parse({}), { listen: '127.0.0.1:5000', p2p: { dialTimeout: 3 } })
    assert.match(schema.safeParse({ p2p: { dialTimeout: 0 } }).error?.issues[0]?.path.join('.') ?? '', /^p2p\.dialTimeout$/)
  })

  test('is read from its env variable and its flag, under the flag\'s name, and put in its place', () => {
    assert.equal(overrideKey(options[1]), 'p2pDialTimeout')
    assert.deepEqual(envOverrides({ FLOTILLA_P2P_DIAL_TIMEOUT: '7' }, options), { p2pDialTimeout: '7' })
    const given = { p2pDialTimeout: '9' } as Parameters<typeof applyOverrides>[1]
    assert.deepEqual(schemaOf(options).parse(applyOverrides({ p2p: { dialTimeout: 7 } }, given, options)), { listen: '127.0.0.1:5000', p2p: { dialTimeout: 9 } })
  })

  test('has its row in the table', () => {
    assert.match(renderConfigTable(options), /^\| `p2p\.dialTimeout` \| `--p2p-dial-timeout <s>` \| `FLOTILLA_P2P_DIAL_TIMEOUT` \| `3` \| how long a peer dial may take \|$/m)
  })
})
