import assert from 'node:assert/strict'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { parseDuration } from '../../../src/config/duration.js'
import { buildConfig, ConfigError, envOverrides, loadConfig, type ConfigOverrides } from '../../../src/config/load-config.js'
import { makeTempDir, type TempDir } from '../../helpers/temp-dir.js'

const DEFAULT_ENDPOINTS = {
  'docker.io': 'https://registry-1.docker.io',
  'ghcr.io': 'https://ghcr.io',
  'quay.io': 'https://quay.io',
  'registry.k8s.io': 'https://registry.k8s.io',
  'gcr.io': 'https://gcr.io',
}

const EXAMPLE_YAML = `# flotilla.yaml
listen: 0.0.0.0:5001
dataDir: /var/lib/flotilla
logLevel: debug
tagTTL: 1h
registries:
  docker.io:
    endpoint: https://registry-1.docker.io
    tagTTL: 5m
  ghcr.io:
    endpoint: https://ghcr.io/
  localhost:5000:
    endpoint: http://127.0.0.1:5000
upstream:
  connectTimeout: 2s
  retries: 4
p2p:
  bootstrap: [/dns4/peer/tcp/4001]
`

function endpoints (c: { registries: ReadonlyMap<string, { endpoint: string }> }): Record<string, string> {
  return Object.fromEntries([...c.registries].map(([k, v]) => [k, v.endpoint]))
}

/** Asserts a ConfigError whose message is one line and matches `message`. */
async function assertConfigError (fn: () => unknown, message: RegExp): Promise<void> {
  await assert.rejects(async () => { await fn() }, (err: unknown) => {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`)
    assert.equal(err.code, 'ERR_CONFIG')
    assert.doesNotMatch(err.message, /\n/, 'the message is one line')
    assert.match(err.message, message)
    return true
  })
}

let tmp: TempDir
let exampleFile: string
before(async () => {
  tmp = await makeTempDir('config')
  exampleFile = join(tmp.path, 'flotilla.yaml')
  await writeFile(exampleFile, EXAMPLE_YAML)
})
after(async () => { await tmp.cleanup() })

async function yamlFile (name: string, text: string): Promise<string> {
  const file = join(tmp.path, name)
  await writeFile(file, text)
  return file
}

describe('defaults', () => {
  test('no file, no env, no flags', async () => {
    const c = await loadConfig(undefined, {}, {})
    assert.equal(c.listen, '127.0.0.1:5000')
    assert.equal(c.dataDir, './flotilla-data')
    assert.equal(c.defaultRegistry, 'docker.io')
    assert.equal(c.logLevel, 'info')
    assert.equal(c.tls, undefined)
    assert.deepEqual(endpoints(c), DEFAULT_ENDPOINTS)
    assert.deepEqual(c.p2p.bootstrap, [])
    assert.equal(c.containerd.namespace, 'k8s.io')
  })

  // Regression: zod 4's .default() skips the transform, so a default of "5 minutes" came out as 300 ms.
  test('duration defaults are converted to milliseconds like configured values', () => {
    const c = buildConfig(undefined)
    assert.equal(c.tagTtlMs, 300_000)
    assert.equal(c.shutdownTimeoutMs, 20_000)
    assert.deepEqual(c.upstream, { connectTimeout: 5000, headersTimeout: 15_000, bodyTimeout: 30_000, retries: 2 })
    for (const r of c.registries.values()) assert.equal(r.tagTtlMs, 300_000)
  })

  test('an empty YAML file is the defaults', async () => {
    const c = await loadConfig(await yamlFile('empty.yaml', ''), {}, {})
    assert.equal(c.listen, '127.0.0.1:5000')
    assert.deepEqual(endpoints(c), DEFAULT_ENDPOINTS)
  })
})

describe('YAML file', () => {
  test('a registry\'s mirrors: tried in order, trailing slashes dropped; a mirror that is not a URL is refused', async () => {
    const c = await loadConfig(await yamlFile('mirrors.yaml', 'registries:\n  registry.example.com:\n    endpoint: https://registry.example.com\n    mirrors:\n' +
      '      - url: https://central.example.net:5000/\n        ca: /etc/flotilla/central-ca.pem\n      - { url: "http://zot.example:8080", skipVerify: true }\n'), {}, {})
    assert.deepEqual(c.registries.get('registry.example.com')?.mirrors, [
      { url: 'https://central.example.net:5000', ca: '/etc/flotilla/central-ca.pem' },
      { url: 'http://zot.example:8080', skipVerify: true },
    ])
    await assert.rejects(loadConfig(await yamlFile('bad-mirror.yaml', 'registries:\n  r.example:\n    endpoint: https://r.example\n    mirrors: [{ url: "central" }]\n'), {}, {}),
      { code: 'ERR_CONFIG', message: /registries\.r\.example\.mirrors\.0\.url/ })
  })

  test('the documented example', async () => {
    const c = await loadConfig(exampleFile, {}, {})
    assert.equal(c.listen, '0.0.0.0:5001')
    assert.equal(c.dataDir, '/var/lib/flotilla')
    assert.equal(c.logLevel, 'debug')
    assert.equal(c.tagTtlMs, 3_600_000)
    assert.deepEqual(Object.fromEntries(c.registries), {
      'docker.io': { endpoint: 'https://registry-1.docker.io', tagTtlMs: 300_000, mirrors: [] },
      'ghcr.io': { endpoint: 'https://ghcr.io', tagTtlMs: 3_600_000, mirrors: [] },
      'localhost:5000': { endpoint: 'http://127.0.0.1:5000', tagTtlMs: 3_600_000, mirrors: [] },
    }, 'the file replaces the default registries; a trailing slash is dropped; tagTTL falls back to the global one')
    assert.equal(c.upstream.connectTimeout, 2000)
    assert.equal(c.upstream.headersTimeout, 15_000)
    assert.equal(c.upstream.retries, 4)
    assert.deepEqual(c.p2p.bootstrap, ['/dns4/peer/tcp/4001'])
  })

  test('registry names are normalized (index.docker.io → docker.io)', async () => {
    const c = await loadConfig(await yamlFile('hub.yaml', 'registries:\n  index.docker.io:\n    endpoint: https://mirror.example\n'), {}, {})
    assert.deepEqual(endpoints(c), { 'docker.io': 'https://mirror.example' })
  })

  test('a bare number is seconds', () => {
    assert.equal(buildConfig({ tagTTL: 90 }).tagTtlMs, 90_000)
  })
})

describe('environment overrides', () => {
  test('envOverrides reads scalars and comma-separated lists, ignoring empty values', () => {
    assert.deepEqual(envOverrides({
      FLOTILLA_LISTEN: '0.0.0.0:6000',
      FLOTILLA_DATA_DIR: '',
      FLOTILLA_REGISTRIES: ' a.io=https://a.io , ,b.io=http://b.io ',
      FLOTILLA_BOOTSTRAP: '/ip4/1.2.3.4/tcp/1',
      UNRELATED: 'x',
    }), { listen: '0.0.0.0:6000', registries: ['a.io=https://a.io', 'b.io=http://b.io'], bootstrap: ['/ip4/1.2.3.4/tcp/1'] })
  })

  test('FLOTILLA_LISTEN and FLOTILLA_REGISTRIES', async () => {
    const c = await loadConfig(undefined, {}, { FLOTILLA_LISTEN: '0.0.0.0:6000', FLOTILLA_REGISTRIES: 'localhost:5000=http://127.0.0.1:5000,ghcr.io=https://ghcr-mirror.example' })
    assert.equal(c.listen, '0.0.0.0:6000')
    assert.deepEqual(endpoints(c), { ...DEFAULT_ENDPOINTS, 'ghcr.io': 'https://ghcr-mirror.example', 'localhost:5000': 'http://127.0.0.1:5000' })
  })

  test('env overrides the file', async () => {
    const c = await loadConfig(exampleFile, {}, { FLOTILLA_LISTEN: '0.0.0.0:6000', FLOTILLA_REGISTRIES: 'docker.io=https://hub-mirror.example' })
    assert.equal(c.listen, '0.0.0.0:6000')
    assert.deepEqual(c.registries.get('docker.io'), { endpoint: 'https://hub-mirror.example', tagTtlMs: 300_000, mirrors: [] }, 'the file tagTTL is kept')
    assert.equal(c.registries.get('ghcr.io')?.endpoint, 'https://ghcr.io')
  })
})

describe('precedence: flags over env over file', () => {
  const env = { FLOTILLA_LISTEN: '0.0.0.0:6000', FLOTILLA_LOG_LEVEL: 'warn', FLOTILLA_REGISTRIES: 'docker.io=https://env.example' }
  const flags: ConfigOverrides = { listen: '0.0.0.0:7000', registries: ['docker.io=https://flag.example'] }

  test('file only', async () => {
    const c = await loadConfig(exampleFile, {}, {})
    assert.equal(c.listen, '0.0.0.0:5001')
  })
  test('env beats file', async () => {
    const c = await loadConfig(exampleFile, {}, env)
    assert.equal(c.listen, '0.0.0.0:6000')
    assert.equal(c.logLevel, 'warn')
    assert.equal(c.registries.get('docker.io')?.endpoint, 'https://env.example')
  })
  test('flags beat env and file', async () => {
    const c = await loadConfig(exampleFile, flags, env)
    assert.equal(c.listen, '0.0.0.0:7000')
    assert.equal(c.logLevel, 'warn', 'env still applies to what flags leave alone')
    assert.equal(c.registries.get('docker.io')?.endpoint, 'https://flag.example')
    assert.equal(c.dataDir, '/var/lib/flotilla', 'the file still applies to what neither sets')
  })
  test('undefined flags and empty flag lists do not mask env', async () => {
    const c = await loadConfig(undefined, { listen: undefined, registries: [] }, env)
    assert.equal(c.listen, '0.0.0.0:6000')
    assert.equal(c.registries.get('docker.io')?.endpoint, 'https://env.example')
  })
})

describe('--registry NAME=URL', () => {
  const cases: Array<[string, string[], Record<string, string>]> = [
    ['adds to the defaults', ['localhost:5000=http://127.0.0.1:5000'], { ...DEFAULT_ENDPOINTS, 'localhost:5000': 'http://127.0.0.1:5000' }],
    ['replaces a default endpoint', ['docker.io=http://10.0.0.1:5000'], { ...DEFAULT_ENDPOINTS, 'docker.io': 'http://10.0.0.1:5000' }],
    ['IPv6 host and trailing slash', ['[::1]:5000=http://[::1]:5000/'], { ...DEFAULT_ENDPOINTS, '[::1]:5000': 'http://[::1]:5000' }],
    ['the first = splits', ['r.example=https://r.example'], { ...DEFAULT_ENDPOINTS, 'r.example': 'https://r.example' }],
    ['several', ['a.example=https://a.example', 'b.example=http://b.example:8080'], { ...DEFAULT_ENDPOINTS, 'a.example': 'https://a.example', 'b.example': 'http://b.example:8080' }],
  ]
  for (const [name, registries, expected] of cases) {
    test(name, () => assert.deepEqual(endpoints(buildConfig(undefined, { registries })), expected))
  }

  const bad: Array<[string, RegExp]> = [
    ['docker.io', /--registry "docker\.io": expected NAME=URL/],
    ['=https://x.example', /--registry "=https:\/\/x\.example": expected NAME=URL/],
    ['docker.io=ftp://x.example', /registries\.docker\.io\.endpoint: expected an http:\/\/ or https:\/\/ base URL/],
    ['docker.io=not a url', /registries\.docker\.io\.endpoint/],
    ['bad_name=https://x.example', /registries\.bad_name: invalid registry/],
  ]
  for (const [pair, message] of bad) {
    test(`${JSON.stringify(pair)} is a ConfigError`, () => assertConfigError(() => buildConfig(undefined, { registries: [pair] }), message))
  }
})

describe('bad configuration: ConfigError, one line, naming the field', () => {
  const cases: Array<[string, unknown, RegExp]> = [
    ['listen without port', { listen: 'localhost' }, /^invalid configuration: listen: expected HOST:PORT/],
    ['listen as a URL', { listen: 'http://0.0.0.0:5000' }, /listen: expected HOST:PORT/],
    ['unknown top-level key', { listn: '0.0.0.0:5000' }, /Unrecognized key: "listn"/],
    ['unknown nested key', { p2p: { bootstrp: [] } }, /p2p: Unrecognized key: "bootstrp"/],
    ['unknown registry key', { registries: { 'ghcr.io': { endpoint: 'https://ghcr.io', ttl: '5m' } } }, /registries\.ghcr\.io: Unrecognized key: "ttl"/],
    ['bad duration', { tagTTL: '5 minutes' }, /tagTTL: invalid duration "5 minutes"/],
    ['bad registry duration', { registries: { 'ghcr.io': { endpoint: 'https://ghcr.io', tagTTL: '-1s' } } }, /registries\.ghcr\.io\.tagTTL: invalid duration/],
    ['endpoint with a path', { registries: { 'ghcr.io': { endpoint: 'https://ghcr.io/v2' } } }, /registries\.ghcr\.io\.endpoint: expected an http:\/\/ or https:\/\/ base URL with no path/],
    ['endpoint with a query', { registries: { 'ghcr.io': { endpoint: 'https://ghcr.io/?x=1' } } }, /registries\.ghcr\.io\.endpoint/],
    ['endpoint missing', { registries: { 'ghcr.io': {} } }, /registries\.ghcr\.io\.endpoint/],
    ['bad log level', { logLevel: 'verbose' }, /logLevel:/],
    ['negative retries', { upstream: { retries: -1 } }, /upstream\.retries:/],
    ['bad default registry', { defaultRegistry: 'not a host' }, /defaultRegistry: invalid registry/],
    ['a list at the top level', ['listen'], /^config: expected a YAML mapping/],
    ['a string at the top level', 'listen: x', /^config: expected a YAML mapping/],
  ]
  for (const [name, raw, message] of cases) {
    test(name, () => assertConfigError(() => buildConfig(raw), message))
  }

  test('several problems are reported together on one line', () =>
    assertConfigError(() => buildConfig({ listen: 'x', logLevel: 'loud' }), /listen: .*; logLevel: /))

  test('a bad env value names the field', () =>
    assertConfigError(() => loadConfig(undefined, {}, { FLOTILLA_LISTEN: 'nope' }), /listen: expected HOST:PORT/))

  test('malformed YAML names the file', async () => {
    const file = await yamlFile('malformed.yaml', 'listen: [\n  a: b\n')
    await assertConfigError(() => loadConfig(file, {}, {}), new RegExp(`^config file ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is not valid YAML: `))
  })

  test('duplicate YAML keys are malformed YAML', async () => {
    const file = await yamlFile('dup.yaml', 'listen: 0.0.0.0:1\nlisten: 0.0.0.0:2\n')
    await assertConfigError(() => loadConfig(file, {}, {}), /is not valid YAML/)
  })

  test('a missing file names the file and the error code', async () => {
    const file = join(tmp.path, 'does-not-exist.yaml')
    await assertConfigError(() => loadConfig(file, {}, {}), new RegExp(`^cannot read config file .*does-not-exist\\.yaml: ENOENT$`))
  })

  test('a bad value in the file names the field', async () => {
    const file = await yamlFile('bad-ttl.yaml', 'registries:\n  ghcr.io:\n    endpoint: https://ghcr.io\n    tagTTL: soon\n')
    await assertConfigError(() => loadConfig(file, {}, {}), /registries\.ghcr\.io\.tagTTL: invalid duration "soon"/)
  })
})

describe('parseDuration', () => {
  const valid: Array<[string | number, number]> = [
    ['200ms', 200],
    ['30s', 30_000],
    ['5m', 300_000],
    ['1h', 3_600_000],
    ['7d', 604_800_000],
    ['1h30m', 5_400_000],
    ['1m30s500ms', 90_500],
    ['1.5s', 1500],
    ['0s', 0],
    ['45', 45_000],
    ['2.5', 2500],
    [' 10s ', 10_000],
    [0, 0],
    [30, 30_000],
    [0.25, 250],
  ]
  for (const [input, ms] of valid) {
    test(`${JSON.stringify(input)} → ${ms} ms`, () => assert.equal(parseDuration(input), ms))
  }
  const invalid: Array<string | number> = ['', ' ', 'abc', '5x', '5 m', 'm5', '-1s', '1h 30m', '1.s', '.5s', 's', 'ms', -1, Number.NaN, Number.POSITIVE_INFINITY]
  for (const input of invalid) {
    test(`${JSON.stringify(typeof input === 'number' && !Number.isFinite(input) ? String(input) : input)} is a TypeError`, () => assert.throws(() => parseDuration(input), TypeError))
  }
})

describe('metricsListen, firstByteTimeout, stallTimeout (issue 8)', () => {
  test('defaults: no metrics listener, 5 s each', () => {
    const c = buildConfig(undefined)
    assert.equal(c.metricsListen, undefined)
    assert.equal(c.firstByteTimeoutMs, 5000)
    assert.equal(c.stallTimeoutMs, 5000)
  })
  test('from the file, durations like the others', () => {
    const c = buildConfig({ metricsListen: '0.0.0.0:9090', firstByteTimeout: '2s', stallTimeout: 1.5 })
    assert.equal(c.metricsListen, '0.0.0.0:9090')
    assert.equal(c.firstByteTimeoutMs, 2000)
    assert.equal(c.stallTimeoutMs, 1500)
  })
  test('from the environment', async () => {
    const c = await loadConfig(undefined, {}, { FLOTILLA_METRICS_LISTEN: '10.0.0.1:9090', FLOTILLA_FIRST_BYTE_TIMEOUT: '3s', FLOTILLA_STALL_TIMEOUT: '500ms' })
    assert.equal(c.metricsListen, '10.0.0.1:9090')
    assert.equal(c.firstByteTimeoutMs, 3000)
    assert.equal(c.stallTimeoutMs, 500)
  })
  test('flags beat the environment', async () => {
    const c = await loadConfig(undefined, { metricsListen: '127.0.0.1:9091', firstByteTimeout: '4s', stallTimeout: '6s' },
      { FLOTILLA_METRICS_LISTEN: '10.0.0.1:9090', FLOTILLA_FIRST_BYTE_TIMEOUT: '3s', FLOTILLA_STALL_TIMEOUT: '500ms' })
    assert.equal(c.metricsListen, '127.0.0.1:9091')
    assert.equal(c.firstByteTimeoutMs, 4000)
    assert.equal(c.stallTimeoutMs, 6000)
  })
  const bad: Array<[Record<string, unknown>, RegExp]> = [
    [{ metricsListen: 'nine-thousand' }, /^invalid configuration: metricsListen: expected HOST:PORT/],
    [{ firstByteTimeout: 'soon' }, /^invalid configuration: firstByteTimeout: invalid duration/],
    [{ stallTimeout: -1 }, /^invalid configuration: stallTimeout: invalid duration/],
  ]
  for (const [raw, message] of bad) test(`${JSON.stringify(raw)} is a ConfigError`, () => assertConfigError(() => buildConfig(raw), message))
})
