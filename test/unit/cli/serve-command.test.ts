// `flotilla serve`'s flags, derived from src/config/options.ts: the same flags as before, and each one reaching
// its field (seen through the one-line error a bad value gives, before anything is started).
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { Command } from 'commander'
import { registerServe } from '../../../src/cli/serve-command.js'
import { flotillaCommand } from '../../helpers/flotilla-agent.js'
import { runCommand, type CommandResult } from '../../helpers/run-command.js'

async function flotilla (args: string[], env: Record<string, string> = {}): Promise<CommandResult> {
  const [cmd, argv] = flotillaCommand(args)
  return await runCommand(cmd, argv, { timeoutMs: 30_000, env: { ...process.env, FLOTILLA_CONFIG: '', ...env } })
}

function assertOneLineFailure (r: CommandResult, pattern: RegExp): void {
  assert.notEqual(r.code, 0)
  const lines = r.stderr.split('\n').filter((l) => l !== '')
  assert.equal(lines.length, 1, r.stderr)
  assert.match(lines[0] ?? '', pattern)
}

void describe('flotilla serve (flags)', () => {
  void test('has the flags it always had', () => {
    const program = new Command()
    registerServe(program)
    const serve = program.commands.find((c) => c.name() === 'serve')
    assert.deepEqual(serve?.options.map((o) => o.flags), [
      '-c, --config <file>', '--role <role>', '-l, --listen <host:port>', '-d, --data-dir <dir>', '--default-registry <name>', '--log-level <level>',
      '--credentials-file <file>', '--first-byte-timeout <duration>', '--stall-timeout <duration>', '--zero-copy <auto|off>', '--metrics-listen <host:port>',
      '--tls-cert <file>', '--tls-key <file>', '--htpasswd <file>', '--allow-cidr <cidr>', '--download-memory <size>', '--store-max-bytes <size>', '--store-max-disk-percent <n>', '-r, --registry <name=url>', '--containerd-socket <path>', '--containerd-namespace <ns>',
      '--containerd-content-dir <dir>', '--precache <file>', '--node-labels <k=v,...>', '--p2p-listen <multiaddr>', '--bootstrap <multiaddr|dns:name>', '--cluster-key-file <file>',
      '--zone <name>', '--peer-address <host:port>', '--send-to-holders <auto|on|off>', '--owner-fanout <n>',
    ])
  })

  const bad: Array<[string, string[], RegExp]> = [
    ['--owner-fanout 0', ['--owner-fanout', '0'], /^flotilla: invalid configuration: p2p\.ownerFanout: /],
    ['--send-to-holders maybe', ['--send-to-holders', 'maybe'], /^flotilla: invalid configuration: p2p\.sendToHolders: /],
    ['--tls-cert alone', ['--tls-cert', 'server.crt'], /^flotilla: invalid configuration: tls\.key: /],
    ['--registry without =', ['--registry', 'docker.io'], /^flotilla: --registry "docker\.io": expected NAME=URL/],
    ['a second --registry', ['-r', 'a.example=https://a.example', '-r', 'b.example=ftp://b.example'], /^flotilla: invalid configuration: registries\.b\.example\.endpoint: /],
    ['--peer-address', ['--peer-address', 'nope'], /^flotilla: invalid configuration: p2p\.peerAddress: expected HOST:PORT/],
  ]
  for (const [name, args, pattern] of bad) {
    void test(`${name}: one line naming the field`, async () => assertOneLineFailure(await flotilla(['serve', ...args]), pattern))
  }

  void test('a flag beats its env variable; env applies where no flag is given', async () => {
    const r = await flotilla(['serve', '--listen', '127.0.0.1:0', '--first-byte-timeout', 'soon'],
      { FLOTILLA_LISTEN: 'nope', FLOTILLA_FIRST_BYTE_TIMEOUT: '1s', FLOTILLA_STALL_TIMEOUT: 'later' })
    assertOneLineFailure(r, /^flotilla: invalid configuration: firstByteTimeout: invalid duration "soon" [^;]*; stallTimeout: invalid duration "later" [^;]*$/)
  })
})
