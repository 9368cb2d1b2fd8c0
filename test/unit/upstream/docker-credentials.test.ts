import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { DockerConfigError, DockerCredentials, loadDockerCredentials } from '../../../src/upstream/docker-credentials.js'

const b64 = (s: string): string => Buffer.from(s).toString('base64')

void describe('loadDockerCredentials', { timeout: 5000 }, () => {
  let dir = ''
  before(async () => { dir = await mkdtemp(join(tmpdir(), 'flotilla-creds-')) })
  after(async () => { await rm(dir, { recursive: true, force: true }) })

  async function configFile (name: string, content: string): Promise<string> {
    const path = join(dir, name)
    await writeFile(path, content)
    return path
  }

  void test('reads auth (base64) and username/password entries, normalizing registry keys', async () => {
    const path = await configFile('good.json', JSON.stringify({
      auths: {
        'https://index.docker.io/v1/': { auth: b64('hubuser:hub:pass') },
        'ghcr.io': { username: 'gh', password: 'token' },
        'http://127.0.0.1:5001': { auth: b64('local:secret') },
        'quay.io': {},
      },
      credsStore: 'desktop',
    }))
    const creds = await loadDockerCredentials(path)
    assert.equal(creds.size, 3)
    // The password keeps its own colons: only the first one separates.
    assert.deepEqual(creds.lookup('docker.io'), { username: 'hubuser', password: 'hub:pass' })
    for (const alias of ['index.docker.io', 'registry-1.docker.io', 'https://index.docker.io/v1/']) {
      assert.equal(creds.lookup(alias)?.username, 'hubuser', alias)
    }
    assert.deepEqual(creds.lookup('ghcr.io'), { username: 'gh', password: 'token' })
    assert.deepEqual(creds.lookup('127.0.0.1:5001'), { username: 'local', password: 'secret' })
    assert.equal(creds.lookup('quay.io'), undefined)
  })

  void test('a missing file or no path means no credentials', async () => {
    assert.equal((await loadDockerCredentials(join(dir, 'absent.json'))).size, 0)
    assert.equal((await loadDockerCredentials(undefined)).size, 0)
  })

  void test('a file without auths means no credentials', async () => {
    assert.equal((await loadDockerCredentials(await configFile('empty.json', '{}'))).size, 0)
  })

  const malformed: Array<[string, string, RegExp]> = [
    ['not JSON', '{ "auths": ', /not JSON/],
    ['top level array', '[]', /top level must be an object/],
    ['auths not an object', '{ "auths": [] }', /"auths" must be an object/],
    ['entry not an object', '{ "auths": { "ghcr.io": "x" } }', /auths\["ghcr.io"\] must be an object/],
    ['auth not base64', '{ "auths": { "ghcr.io": { "auth": "%%%" } } }', /auth is not base64/],
    ['auth without a colon', `{ "auths": { "ghcr.io": { "auth": "${b64('nocolon')}" } } }`, /auth is not base64/],
  ]
  for (const [name, content, message] of malformed) {
    void test(`malformed: ${name}`, async () => {
      const path = await configFile(`bad-${name.replaceAll(' ', '-')}.json`, content)
      await assert.rejects(loadDockerCredentials(path), (err: unknown) => {
        assert.ok(err instanceof DockerConfigError)
        assert.equal(err.code, 'ERR_DOCKER_CONFIG_INVALID')
        assert.match(err.message, message)
        assert.ok(err.message.includes(path))
        assert.ok(!err.message.includes('\n'), 'one line')
        return true
      })
    })
  }

  void test('an unreadable path (a directory) is an error, not anonymous', async () => {
    await assert.rejects(loadDockerCredentials(dir), DockerConfigError)
  })
})

void describe('DockerCredentials', () => {
  void test('built from entries, looked up case-insensitively', () => {
    const creds = new DockerCredentials([['Registry.Example.com:443', { username: 'u', password: 'p' }]])
    assert.equal(creds.lookup('registry.example.com:443')?.username, 'u')
    assert.equal(creds.lookup('registry.example.com'), undefined)
  })
})
