import assert from 'node:assert/strict'
import { utimes, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import bcrypt from 'bcryptjs'
import { pino } from 'pino'
import { ClientAuth } from '../../../src/auth/client-auth.js'
import { makeTempDir, type TempDir } from '../../helpers/temp-dir.js'

const logger = pino({ level: 'silent' })
const basic = (user: string, password: string): string => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`

describe('ClientAuth', () => {
  let tmp: TempDir
  let file: string
  let clock = 1_000_000
  const now = (): number => clock

  before(async () => {
    tmp = await makeTempDir('client-auth')
    file = join(tmp.path, 'htpasswd')
    // As `htpasswd -B` writes them ($2y$), plus lines that are not bcrypt (skipped with a warning).
    const y = bcrypt.hashSync('s3cret', 4).replace(/^\$2b\$/, '$2y$')
    await writeFile(file, `# users\nalice:${y}\nbob:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\ncarol:${bcrypt.hashSync('pw', 4)}\n\n`)
  })
  after(async () => { await tmp.cleanup() })

  it('admits good Basic credentials and says why others are refused', async () => {
    const auth = await ClientAuth.open({ htpasswd: file, logger, now })
    assert.deepEqual(await auth.check('10.0.0.9', basic('alice', 's3cret')), { ok: true, user: 'alice' })
    assert.deepEqual(await auth.check('10.0.0.9', basic('carol', 'pw')), { ok: true, user: 'carol' })
    assert.deepEqual(await auth.check('10.0.0.9', undefined), { ok: false, reason: 'missing' })
    assert.deepEqual(await auth.check('10.0.0.9', 'Bearer abc'), { ok: false, reason: 'malformed' })
    assert.deepEqual(await auth.check('10.0.0.9', `Basic ${Buffer.from('no-colon').toString('base64')}`), { ok: false, reason: 'malformed' })
    assert.deepEqual(await auth.check('10.0.0.9', basic('alice', 'wrong')), { ok: false, reason: 'wrong-password' })
    assert.deepEqual(await auth.check('10.0.0.9', basic('bob', 'anything')), { ok: false, reason: 'unknown-user' }, 'a non-bcrypt entry is not read')
    assert.deepEqual(await auth.check('10.0.0.9', basic('mallory', 's3cret')), { ok: false, reason: 'unknown-user' })
  })

  it('admits allowed networks without credentials (IPv4, IPv4-mapped IPv6, IPv6)', async () => {
    const auth = await ClientAuth.open({ allowCidrs: ['10.1.0.0/16', '2001:db8::/32', '192.168.7.7'], logger, now })
    assert.equal((await auth.check('10.1.200.3', undefined)).ok, true)
    assert.equal((await auth.check('::ffff:10.1.0.1', undefined)).ok, true)
    assert.equal((await auth.check('2001:db8:1::5', undefined)).ok, true)
    assert.equal((await auth.check('192.168.7.7', undefined)).ok, true)
    assert.deepEqual(await auth.check('10.2.0.1', undefined), { ok: false, reason: 'missing' })
    assert.deepEqual(await auth.check('192.168.7.8', basic('alice', 's3cret')), { ok: false, reason: 'missing' }, 'no htpasswd: credentials cannot admit')
  })

  it('refuses bad CIDRs and an unreadable file at start, with one line', async () => {
    for (const cidr of ['10.0.0.0/33', 'nonsense', '2001:db8::/129', '']) {
      await assert.rejects(ClientAuth.open({ allowCidrs: [cidr], logger }), { code: 'ERR_CONFIG', message: /^auth\.allowCidrs: / })
    }
    await assert.rejects(ClientAuth.open({ htpasswd: join(tmp.path, 'missing'), logger }), { code: 'ERR_CONFIG', message: /^auth\.htpasswd: cannot read .*ENOENT/ })
  })

  it('reads the file again when it changes, and forgets cached verifications', async () => {
    const f = join(tmp.path, 'reloaded')
    await writeFile(f, `dave:${bcrypt.hashSync('one', 4)}\n`)
    const auth = await ClientAuth.open({ htpasswd: f, logger, now })
    assert.equal((await auth.check(undefined, basic('dave', 'one'))).ok, true)
    await writeFile(f, `dave:${bcrypt.hashSync('two', 4)}\nerin:${bcrypt.hashSync('three', 4)}\n`)
    await utimes(f, new Date(), new Date(Date.now() + 5000))
    // Within a second of the last look the old file still answers; after it, the new one.
    clock += 2000
    assert.deepEqual(await auth.check(undefined, basic('dave', 'one')), { ok: false, reason: 'wrong-password' })
    assert.equal((await auth.check(undefined, basic('dave', 'two'))).ok, true)
    assert.equal((await auth.check(undefined, basic('erin', 'three'))).ok, true)
  })
})
