import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { DEFAULT_REFRESH_MS, parsePrecacheSpec } from '../../../src/precache/precache-spec.js'

const HEX = 'b'.repeat(64)

describe('parsePrecacheSpec', () => {
  it('reads sets, normalising references as containerd names the images it pulls', () => {
    const spec = parsePrecacheSpec(`
sets:
  - name: web
    nodeSelector: { tier: edge, topology.kubernetes.io/zone: eu-1a }
    images:
      - busybox:1.36
      - registry.example.com/team/web:v1.4
      - registry.example.com/team/sidecar@sha256:${HEX}
      - registry.example.com/team/both:v2@sha256:${HEX}
      - localhost:5000/x
      - busybox:1.36
    refresh: 90s
    platforms: [linux/amd64, linux/arm64]
  - name: all
`)
    assert.equal(spec.sets.length, 2)
    const [web, all] = spec.sets
    assert.deepEqual(web?.nodeSelector, { tier: 'edge', 'topology.kubernetes.io/zone': 'eu-1a' })
    assert.deepEqual(web?.images.map((i) => i.key), [
      'docker.io/library/busybox:1.36',
      'registry.example.com/team/web:v1.4',
      `registry.example.com/team/sidecar@sha256:${HEX}`,
      `registry.example.com/team/both@sha256:${HEX}`,
      'localhost:5000/x:latest',
    ])
    assert.equal(web?.refreshMs, 90_000)
    assert.deepEqual(web?.platforms, [{ os: 'linux', architecture: 'amd64' }, { os: 'linux', architecture: 'arm64', variant: 'v8' }])
    assert.deepEqual(all, { name: 'all', nodeSelector: {}, images: [], refreshMs: DEFAULT_REFRESH_MS, platforms: [] })
  })

  it('fails a bad reference alone, with the reason', () => {
    const spec = parsePrecacheSpec(`sets: [{ name: web, images: ["UPPER/Case::bad", "x@sha256:nothex", busybox] }]`)
    const images = spec.sets[0]?.images ?? []
    assert.equal(images.length, 3)
    assert.match(images[0]?.error ?? '', /^not an image reference: /)
    assert.match(images[1]?.error ?? '', /^not an image reference: /)
    assert.equal(images[2]?.error, undefined)
    assert.equal(images[2]?.key, 'docker.io/library/busybox:latest')
  })

  it('declares no sets only when it says so: an empty file is refused (it may be half-written)', () => {
    assert.deepEqual(parsePrecacheSpec('sets: []'), { sets: [] })
    assert.deepEqual(parsePrecacheSpec('{}'), { sets: [] })
    assert.throws(() => parsePrecacheSpec(' \n', 'f.yaml'), /^ConfigError: f\.yaml: empty \(to declare no sets, write sets: \[\]\)$/)
  })

  const bad: Array<[string, string, RegExp]> = [
    ['YAML that does not parse', 'sets: [ {', /^f\.yaml: not valid YAML: /],
    ['a list at the top', '- a', /^f\.yaml: /],
    ['a scalar', 'hello', /^f\.yaml: /],
    ['null', '~', /^f\.yaml: /],
    ['an unknown key', 'sets: []\nset: []', /^f\.yaml: .*set/],
    ['an unknown key in a set', 'sets: [{ name: a, image: [x] }]', /^f\.yaml: sets\.0: .*image/],
    ['a set without a name', 'sets: [{ images: [x] }]', /^f\.yaml: sets\.0\.name: /],
    ['a name with capitals', 'sets: [{ name: Web }]', /^f\.yaml: sets\.0\.name: expected a lowercase name/],
    ['the same name twice', 'sets: [{ name: a }, { name: a }]', /^f\.yaml: sets\.1\.name: set a is declared twice/],
    ['a bad refresh', 'sets: [{ name: a, refresh: soon }]', /^f\.yaml: sets\.0\.refresh: /],
    ['a refresh under a second', 'sets: [{ name: a, refresh: 10ms }]', /^f\.yaml: sets\.0\.refresh: at least 1s/],
    ['a bad platform', 'sets: [{ name: a, platforms: [linux] }]', /^f\.yaml: sets\.0\.platforms\.0: invalid platform/],
    ['a bad selector key', 'sets: [{ name: a, nodeSelector: { "bad key": x } }]', /^f\.yaml: sets\.0\.nodeSelector\.bad key: not a Kubernetes label key/],
    ['a bad selector value', 'sets: [{ name: a, nodeSelector: { tier: "a b" } }]', /^f\.yaml: sets\.0\.nodeSelector\.tier: not a Kubernetes label value/],
    ['images not a list', 'sets: [{ name: a, images: x }]', /^f\.yaml: sets\.0\.images: /],
  ]
  for (const [what, text, message] of bad) {
    it(`refuses ${what} with one line naming the place`, () => {
      assert.throws(() => parsePrecacheSpec(text, 'f.yaml'), (err: Error & { code?: string }) => {
        assert.equal(err.code, 'ERR_CONFIG')
        assert.match(err.message, message)
        assert.ok(!err.message.includes('\n'), err.message)
        return true
      })
    })
  }
})
