// `flotilla containerd configure|restore|check` run as the user runs them: a child process, real files.
import assert from 'node:assert/strict'
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises'
import { join, relative } from 'node:path'
import { afterEach, beforeEach, describe, test } from 'node:test'
import { parseHostsToml } from '../../../src/containerd/hosts-toml.js'
import { flotillaCommand } from '../../helpers/flotilla-agent.js'
import { freePort } from '../../helpers/free-port.js'
import { runCommand, type CommandResult } from '../../helpers/run-command.js'
import { makeTempDir, type TempDir } from '../../helpers/temp-dir.js'

const MIRROR = 'http://127.0.0.1:5000'
const REGISTRY = 'registry.example:5000'
const ORIGINAL = `# the node's private registry: keep this comment
server = "https://registry.example:5000"
ca = "/etc/certs/corp-ca.crt"

[host."https://mirror.corp.example"]
  capabilities = ["pull", "resolve"]
`

async function flotilla (...args: string[]): Promise<CommandResult> {
  const [cmd, argv] = flotillaCommand(args)
  return await runCommand(cmd, argv, { timeoutMs: 30_000, env: { ...process.env, FLOTILLA_CONFIG: '' } })
}

/** Every file under `dir` with its content, for "nothing changed" assertions. */
async function snapshot (dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {}
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue
    const path = join(entry.parentPath, entry.name)
    out[relative(dir, path)] = await readFile(path, 'utf8')
  }
  return out
}

/** A user error: exactly one `flotilla: …` line on stderr, nothing on stdout, a non-zero exit. */
function assertOneLineFailure (r: CommandResult, pattern: RegExp): void {
  assert.notEqual(r.code, 0)
  assert.equal(r.stdout, '')
  const lines = r.stderr.split('\n').filter((l) => l !== '')
  assert.equal(lines.length, 1, r.stderr)
  assert.match(lines[0] ?? '', /^flotilla: /)
  assert.match(lines[0] ?? '', pattern)
}

void describe('flotilla containerd (CLI)', () => {
  let tmp: TempDir
  let certsDir: string
  let originalPath: string

  beforeEach(async () => {
    tmp = await makeTempDir('cli-containerd')
    certsDir = join(tmp.path, 'certs.d')
    await mkdir(join(certsDir, REGISTRY), { recursive: true })
    originalPath = join(certsDir, REGISTRY, 'hosts.toml')
    await writeFile(originalPath, ORIGINAL)
  })
  afterEach(async () => { await tmp.cleanup() })

  void test('configure --dry-run prints each path and content and writes nothing', async () => {
    const before = await snapshot(certsDir)
    const r = await flotilla('containerd', 'configure', '--certs-dir', certsDir, '--mirror', MIRROR,
      '--registry', REGISTRY, '--registry', 'docker.io', '--dry-run')
    assert.equal(r.code, 0, r.stderr)
    assert.equal(r.stderr, '')
    assert.deepEqual(await snapshot(certsDir), before)
    const hubPath = join(certsDir, 'docker.io', 'hosts.toml')
    assert.ok(r.stdout.includes(`# updated ${originalPath} (dry run)\n`), r.stdout)
    assert.ok(r.stdout.includes(`# created ${hubPath} (dry run)\n`), r.stdout)
    assert.ok(r.stdout.includes(`[host."${MIRROR}"]`), r.stdout)
    assert.ok(r.stdout.includes('server = "https://registry-1.docker.io"'), r.stdout)
    assert.ok(r.stdout.includes('[host."https://mirror.corp.example"]'), 'the original host is in the preview')
  })

  void test('configure twice: updated/created, then unchanged with the same bytes; restore gives the original back', async () => {
    const args = ['containerd', 'configure', '--certs-dir', certsDir, '--mirror', MIRROR, '--registry', REGISTRY, '--registry', 'ghcr.io',
      '--upstream', 'ghcr.io=https://ghcr.example', '--dial-timeout', '300ms']
    const hubPath = join(certsDir, 'ghcr.io', 'hosts.toml')
    const first = await flotilla(...args)
    assert.equal(first.code, 0, first.stderr)
    assert.equal(first.stdout, `updated ${originalPath}\ncreated ${hubPath}\n`)
    const written = await snapshot(certsDir)
    const ours = parseHostsToml(await readFile(originalPath, 'utf8'))
    assert.deepEqual(ours.hosts.map(([url]) => url), [MIRROR, 'https://mirror.corp.example'])
    assert.equal(ours.hosts[0]?.[1].dial_timeout, '300ms')
    assert.equal(ours.topLevel.ca, '/etc/certs/corp-ca.crt')
    assert.equal(parseHostsToml(await readFile(hubPath, 'utf8')).server, 'https://ghcr.example')

    const second = await flotilla(...args)
    assert.equal(second.code, 0, second.stderr)
    assert.equal(second.stdout, `unchanged ${originalPath}\nunchanged ${hubPath}\n`)
    assert.deepEqual(await snapshot(certsDir), written)

    const dry = await flotilla('containerd', 'restore', '--certs-dir', certsDir, '--dry-run')
    assert.equal(dry.code, 0, dry.stderr)
    assert.deepEqual(await snapshot(certsDir), written)

    const restored = await flotilla('containerd', 'restore', '--certs-dir', certsDir)
    assert.equal(restored.code, 0, restored.stderr)
    // Without --registry, every directory flotilla configured, in name order.
    assert.equal(restored.stdout, `removed ${hubPath}\nrestored ${originalPath}\n`)
    assert.deepEqual(await snapshot(certsDir), { [join(REGISTRY, 'hosts.toml')]: ORIGINAL })
    assert.deepEqual((await readdir(certsDir)).sort(), [REGISTRY], 'the directory configure created is gone')

    const nothing = await flotilla('containerd', 'restore', '--certs-dir', certsDir)
    assert.equal(nothing.code, 0, nothing.stderr)
    assert.equal(nothing.stdout, `nothing to restore under ${certsDir}\n`)
  })

  void test('no --registry means _default, without a server line', async () => {
    const r = await flotilla('containerd', 'configure', '--certs-dir', certsDir, '--mirror', MIRROR)
    assert.equal(r.code, 0, r.stderr)
    const path = join(certsDir, '_default', 'hosts.toml')
    assert.equal(r.stdout, `created ${path}\n`)
    assert.equal(parseHostsToml(await readFile(path, 'utf8')).server, undefined)
  })

  for (const { name, args, pattern } of [
    { name: 'a mirror that is not a URL', args: ['--mirror', 'not a url'], pattern: /mirror URL "not a url" is not a URL/ },
    { name: 'a mirror with a query', args: ['--mirror', 'http://127.0.0.1:5000/?x=1'], pattern: /without credentials or query/ },
    { name: 'a bad dial timeout', args: ['--dial-timeout', 'soon'], pattern: /dial timeout "soon" is not a Go duration/ },
    { name: 'an --upstream without =', args: ['--registry', REGISTRY, '--upstream', 'nope'], pattern: /expected NAME=URL/ },
    { name: 'an --upstream for a registry not configured', args: ['--upstream', 'ghcr.io=https://ghcr.example'], pattern: /ghcr\.io is not one of the --registry names/ },
    { name: 'an --upstream that is not http(s)', args: ['--registry', 'ghcr.io', '--upstream', 'ghcr.io=ftp://x'], pattern: /not an http\(s\) URL/ },
    { name: 'an invalid registry name', args: ['--registry', 'Not/A Host'], pattern: /invalid registry/ },
  ]) {
    void test(`configure with ${name}: one line, exit ≠ 0, nothing written`, async () => {
      const before = await snapshot(certsDir)
      assertOneLineFailure(await flotilla('containerd', 'configure', '--certs-dir', certsDir, ...args), pattern)
      assert.deepEqual(await snapshot(certsDir), before)
    })
  }

  void test('check against no containerd and no agent: a ✗ line per check, then one error line and exit 1', async () => {
    const mirror = `http://127.0.0.1:${await freePort()}`
    const r = await flotilla('containerd', 'check', '--socket', join(tmp.path, 'missing.sock'), '--certs-dir', certsDir,
      '--mirror', mirror, '--registry', REGISTRY, '--timeout', '500ms')
    assert.equal(r.code, 1)
    const lines = r.stdout.split('\n').filter((l) => l !== '')
    assert.deepEqual(lines.map((l) => l.slice(0, l.indexOf(': '))), ['✗ containerd', '✗ cri config_path', `✗ hosts.toml ${REGISTRY}`, '✗ agent'])
    assert.match(lines[2] ?? '', /does not list/)
    assert.equal(r.stderr, 'flotilla: 4 of 4 checks failed\n')
  })

  void test('check with a bad --timeout fails before checking anything', async () => {
    assertOneLineFailure(await flotilla('containerd', 'check', '--certs-dir', certsDir, '--timeout', 'later'), /--timeout: invalid duration/)
  })
})
