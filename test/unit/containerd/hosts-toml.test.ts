import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import {
  HOSTS_TOML_MARKER,
  HostsTomlError,
  defaultUpstreamServer,
  findMirror,
  hostsDirName,
  normalizeMirrorUrl,
  parseHostsToml,
  renderHostsToml,
} from '../../../src/containerd/hosts-toml.js'

const MIRROR = 'http://127.0.0.1:5000'

/** smol-toml builds null-prototype objects; compare plain data. */
function parsed (text: string): ReturnType<typeof parseHostsToml> {
  return JSON.parse(JSON.stringify(parseHostsToml(text))) as ReturnType<typeof parseHostsToml>
}

/** A node's own file: a private CA for the upstream, another mirror with a CA and headers. */
const EXISTING = `server = "https://registry.corp.example"
ca = "/etc/certs/corp-ca.crt"

[host."https://mirror.corp.example"]
  capabilities = ["pull", "resolve"]
  ca = ["/etc/certs/mirror-ca.pem"]
  skip_verify = false

  [host."https://mirror.corp.example".header]
    x-team = ["platform"]

[host."https://backup.corp.example:8443"]
  capabilities = ["pull"]
`

void describe('renderHostsToml', () => {
  void test('a fresh file: marker, server, the agent with pull+resolve and dial_timeout', () => {
    const text = renderHostsToml({ mirrorUrl: MIRROR, server: 'https://registry-1.docker.io' })
    assert.ok(text.startsWith(HOSTS_TOML_MARKER))
    const doc = parsed(text)
    assert.equal(doc.server, 'https://registry-1.docker.io')
    assert.deepEqual(doc.hosts, [[MIRROR, { capabilities: ['pull', 'resolve'], dial_timeout: '200ms' }]])
    assert.match(text, /^\[host\."http:\/\/127\.0\.0\.1:5000"\]$/m)
  })

  void test('_default: no server line', () => {
    const text = renderHostsToml({ mirrorUrl: MIRROR, dialTimeout: '1s' })
    assert.doesNotMatch(text, /^server/m)
    assert.deepEqual(parsed(text).hosts, [[MIRROR, { capabilities: ['pull', 'resolve'], dial_timeout: '1s' }]])
  })

  void test('an existing file with a CA and another mirror: ours first, theirs kept after, their server and CA kept', () => {
    const text = renderHostsToml({ mirrorUrl: MIRROR, server: 'https://registry.corp.example:443', original: EXISTING })
    const doc = parsed(text)
    assert.equal(doc.server, 'https://registry.corp.example')
    assert.deepEqual(doc.topLevel, { ca: '/etc/certs/corp-ca.crt' })
    assert.deepEqual(doc.hosts.map(([url]) => url), [MIRROR, 'https://mirror.corp.example', 'https://backup.corp.example:8443'])
    assert.deepEqual(doc.hosts[1]?.[1], {
      capabilities: ['pull', 'resolve'],
      ca: ['/etc/certs/mirror-ca.pem'],
      skip_verify: false,
      header: { 'x-team': ['platform'] },
    })
    assert.deepEqual(doc.hosts[2]?.[1], { capabilities: ['pull'] })
  })

  void test('an original without server gets ours', () => {
    const original = '[host."https://other.example"]\n  capabilities = ["pull"]\n'
    const doc = parsed(renderHostsToml({ mirrorUrl: MIRROR, server: 'https://ghcr.io', original }))
    assert.equal(doc.server, 'https://ghcr.io')
    assert.deepEqual(doc.hosts.map(([url]) => url), [MIRROR, 'https://other.example'])
  })

  void test('an original that already lists the agent (any spelling) does not list it twice', () => {
    const original = '[host."http://127.0.0.1:5000/"]\n  capabilities = ["pull"]\n[host."https://b.example"]\n  capabilities = ["pull"]\n'
    const doc = parsed(renderHostsToml({ mirrorUrl: `${MIRROR}/`, original }))
    assert.deepEqual(doc.hosts.map(([url]) => url), [MIRROR, 'https://b.example'])
    assert.deepEqual(doc.hosts[0]?.[1], { capabilities: ['pull', 'resolve'], dial_timeout: '200ms' })
  })

  void test('idempotent: the same inputs render the same bytes, and re-merging our own output changes nothing', () => {
    const a = renderHostsToml({ mirrorUrl: MIRROR, server: 'https://x.example', original: EXISTING })
    const b = renderHostsToml({ mirrorUrl: MIRROR, server: 'https://x.example', original: EXISTING })
    assert.equal(a, b)
    const again = renderHostsToml({ mirrorUrl: MIRROR, server: 'https://x.example', original: a })
    assert.deepEqual(parsed(again), parsed(a))
  })

  void test('rejects bad options and unparsable originals with stable codes', () => {
    const code = (fn: () => unknown): string | undefined => {
      try {
        fn()
        return undefined
      } catch (err) {
        assert.ok(err instanceof HostsTomlError)
        return err.code
      }
    }
    assert.equal(code(() => renderHostsToml({ mirrorUrl: 'ftp://x' })), 'ERR_HOSTS_OPTION_INVALID')
    assert.equal(code(() => renderHostsToml({ mirrorUrl: 'http://u:p@x' })), 'ERR_HOSTS_OPTION_INVALID')
    assert.equal(code(() => renderHostsToml({ mirrorUrl: MIRROR, dialTimeout: '200' })), 'ERR_HOSTS_OPTION_INVALID')
    assert.equal(code(() => renderHostsToml({ mirrorUrl: MIRROR, original: '[host."x"\n' })), 'ERR_HOSTS_TOML_INVALID')
    assert.equal(code(() => renderHostsToml({ mirrorUrl: MIRROR, original: 'server = 1\n' })), 'ERR_HOSTS_TOML_INVALID')
    assert.equal(code(() => renderHostsToml({ mirrorUrl: MIRROR, original: 'host = "x"\n' })), 'ERR_HOSTS_TOML_INVALID')
  })
})

void describe('findMirror', () => {
  void test('reports whether the agent is listed and first', () => {
    assert.deepEqual(findMirror(renderHostsToml({ mirrorUrl: MIRROR, original: EXISTING }), MIRROR), { isListed: true, isFirst: true, hostCount: 3 })
    assert.deepEqual(findMirror(EXISTING, MIRROR), { isListed: false, isFirst: false, hostCount: 2 })
    const second = `${EXISTING}\n[host."${MIRROR}"]\n  capabilities = ["pull"]\n`
    assert.deepEqual(findMirror(second, MIRROR), { isListed: true, isFirst: false, hostCount: 3 })
  })
})

void describe('names', () => {
  const cases: Array<[string, string]> = [
    ['docker.io', 'docker.io'],
    ['registry-1.docker.io', 'docker.io'],
    ['index.docker.io', 'docker.io'],
    ['GHCR.io', 'ghcr.io'],
    ['127.0.0.1:5001', '127.0.0.1:5001'],
    ['_default', '_default'],
  ]
  for (const [input, dir] of cases) void test(`hostsDirName(${input}) = ${dir}`, () => assert.equal(hostsDirName(input), dir))
  void test('hostsDirName refuses paths', () => {
    assert.throws(() => hostsDirName('../etc'), HostsTomlError)
    assert.throws(() => hostsDirName('a/b'), HostsTomlError)
  })
  void test('default upstream servers', () => {
    assert.equal(defaultUpstreamServer('docker.io'), 'https://registry-1.docker.io')
    assert.equal(defaultUpstreamServer('quay.io'), 'https://quay.io')
  })
  void test('normalizeMirrorUrl drops the trailing slash and lowercases the host', () => {
    assert.equal(normalizeMirrorUrl('HTTP://LocalHost:5000/'), 'http://localhost:5000')
  })
})
