import '../../../src/p2p/polyfill.js'
import assert from 'node:assert/strict'
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { P2pError } from '../../../src/p2p/errors.js'
import { loadOrCreateIdentity } from '../../../src/p2p/identity.js'

let dir: string
before(async () => { dir = await mkdtemp(join(tmpdir(), 'flotilla-identity-')) })
after(async () => { await rm(dir, { recursive: true, force: true }) })

void test('creates an Ed25519 key with mode 0600 (and its directory), then reuses it', async () => {
  const file = join(dir, 'nested', 'p2p.key')
  const first = await loadOrCreateIdentity(file)
  assert.equal(first.created, true)
  assert.equal(first.privateKey.type, 'Ed25519')
  assert.equal((await stat(file)).mode & 0o777, 0o600)
  const second = await loadOrCreateIdentity(file)
  assert.equal(second.created, false)
  assert.equal(peerIdFromPrivateKey(second.privateKey).toString(), peerIdFromPrivateKey(first.privateKey).toString())
})

void test('concurrent first starts agree on one key', async () => {
  const file = join(dir, 'race.key')
  const identities = await Promise.all([loadOrCreateIdentity(file), loadOrCreateIdentity(file), loadOrCreateIdentity(file)])
  const onDisk = await loadOrCreateIdentity(file)
  const expected = peerIdFromPrivateKey(onDisk.privateKey).toString()
  for (const identity of identities) assert.equal(peerIdFromPrivateKey(identity.privateKey).toString(), expected)
})

void test('tightens a file readable by others', async () => {
  const file = join(dir, 'loose.key')
  await loadOrCreateIdentity(file)
  await chmod(file, 0o644)
  const identity = await loadOrCreateIdentity(file)
  assert.equal(identity.hadLoosePermissions, true)
  assert.equal((await stat(file)).mode & 0o777, 0o600)
})

void test('a file that is not a key is an error, never replaced', async () => {
  const file = join(dir, 'garbage.key')
  await writeFile(file, 'not a key')
  await assert.rejects(loadOrCreateIdentity(file), (err: unknown) => err instanceof P2pError && err.code === 'ERR_P2P_IDENTITY_INVALID' && err.message.includes(file))
  assert.equal(await readFile(file, 'utf8'), 'not a key')
})
