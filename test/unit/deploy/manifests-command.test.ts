// `flotilla manifests` run as the user runs it: a child process, YAML on stdout.
import assert from 'node:assert/strict'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { parseAllDocuments } from 'yaml'
import { DEFAULT_IMAGE } from '../../../src/deploy/default-image.js'
import { renderAgentRestoreManifests, renderManifests } from '../../../src/deploy/render-manifests.js'
import { flotillaCommand } from '../../helpers/flotilla-agent.js'
import { runCommand, type CommandResult } from '../../helpers/run-command.js'
import { makeTempDir, type TempDir } from '../../helpers/temp-dir.js'
import { containersOf, type Workload, WORKLOAD_KINDS } from './pod-template.js'

async function flotilla (...args: string[]): Promise<CommandResult> {
  const [cmd, argv] = flotillaCommand(args)
  return await runCommand(cmd, argv, { timeoutMs: 30_000 })
}

function assertOneLineFailure (r: CommandResult, pattern: RegExp): void {
  assert.equal(r.code, 1)
  assert.equal(r.stdout, '')
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr)
  assert.match(r.stderr, pattern)
}

interface Doc { kind: string, metadata: { name: string, namespace?: string }, data?: Record<string, string> }

describe('flotilla manifests', () => {
  let tmp: TempDir
  before(async () => { tmp = await makeTempDir('manifests') })
  after(async () => { await tmp.cleanup() })

  test('--role agent --namespace x --image y: every object in x, every flotilla container runs y', async () => {
    const r = await flotilla('manifests', '--role', 'agent', '--namespace', 'x', '--image', 'y')
    assert.equal(r.code, 0, r.stderr)
    assert.equal(r.stdout, renderManifests('agent', { namespace: 'x', image: 'y' }))
    const docs = parseAllDocuments(r.stdout).map((d) => d.toJS() as Doc)
    assert.ok(docs.some((d) => d.kind === 'DaemonSet'))
    for (const d of docs) if (!d.kind.startsWith('Cluster')) assert.equal(d.metadata.namespace, 'x', d.kind)
    const ds = docs.find((d) => WORKLOAD_KINDS.has(d.kind)) as unknown as Workload
    const { init, main } = containersOf(ds)
    assert.deepEqual([...init, ...main].map((c) => c.image), ['y', 'y'])
  })

  test('defaults: namespace flotilla, the versioned image; mirror and redirector too', async () => {
    for (const role of ['agent', 'mirror', 'redirector'] as const) {
      const r = await flotilla('manifests', '--role', role)
      assert.equal(r.code, 0, r.stderr)
      assert.equal(r.stdout, renderManifests(role, { namespace: 'flotilla', image: DEFAULT_IMAGE }))
    }
  })

  test('--uninstall prints the restore step', async () => {
    const r = await flotilla('manifests', '--role', 'agent', '--uninstall', '--namespace', 'x')
    assert.equal(r.code, 0, r.stderr)
    assert.equal(r.stdout, renderAgentRestoreManifests({ namespace: 'x', image: DEFAULT_IMAGE }))
  })

  test('--config FILE is checked, then embedded as the ConfigMap', async () => {
    const file = join(tmp.path, 'agent.yaml')
    const text = 'registries:\n  docker.io: { endpoint: https://registry-1.docker.io }\nlogLevel: debug\n'
    await writeFile(file, text)
    const r = await flotilla('manifests', '--role', 'agent', '--config', file)
    assert.equal(r.code, 0, r.stderr)
    const config = parseAllDocuments(r.stdout).map((d) => d.toJS() as Doc).find((d) => d.metadata.name === 'flotilla-agent-config')
    assert.equal(config?.data?.['config.yaml'], text)
  })

  test('a bad --config is one line and exit 1', async () => {
    const bad = join(tmp.path, 'bad.yaml')
    await writeFile(bad, 'logLevel: loud\n')
    assertOneLineFailure(await flotilla('manifests', '--role', 'agent', '--config', bad), /^flotilla: --config .*bad\.yaml: invalid configuration: logLevel/)
    const broken = join(tmp.path, 'broken.yaml')
    await writeFile(broken, 'registries: [\n')
    assertOneLineFailure(await flotilla('manifests', '--role', 'agent', '--config', broken), /not valid YAML/)
    assertOneLineFailure(await flotilla('manifests', '--role', 'agent', '--config', join(tmp.path, 'missing.yaml')), /cannot read .*ENOENT/)
  })

  test('bad options fail without output', async () => {
    assertOneLineFailure(await flotilla('manifests', '--role', 'agent', '--namespace', 'Not_A_Label'), /--namespace "Not_A_Label"/)
    assertOneLineFailure(await flotilla('manifests', '--role', 'mirror', '--uninstall'), /--uninstall goes with --role agent/)
    const r = await flotilla('manifests', '--role', 'proxy')
    assert.notEqual(r.code, 0)
    assert.equal(r.stdout, '')
    assert.match(r.stderr, /Allowed choices are agent, mirror, redirector/)
  })
})
