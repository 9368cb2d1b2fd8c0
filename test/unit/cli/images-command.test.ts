// `flotilla images --from-manifests` run as the user runs it: a child process, real files, real stdin.
import assert from 'node:assert/strict'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { flotillaCommand } from '../../helpers/flotilla-agent.js'
import { runCommand, type CommandResult } from '../../helpers/run-command.js'
import { makeTempDir, type TempDir } from '../../helpers/temp-dir.js'

const SHA = `sha256:${'b'.repeat(64)}`

// Issue 12, check 4: a Deployment (containers + initContainers), a CronJob, a Pod with ephemeralContainers, a
// List and a ConfigMap whose data merely looks like an image.
const MANIFESTS = `# Source: web/templates/deployment.yaml
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector: { matchLabels: { app: web } }
  template:
    metadata: { labels: { app: web } }
    spec:
      initContainers:
        - name: migrate
          image: registry.example.com/team/migrate:v3
      containers:
        - name: web
          image: nginx:1.27
        - name: metrics
          image: quay.io/prometheus/nginx-exporter:1.1@${SHA}
---
apiVersion: batch/v1
kind: CronJob
metadata:
  name: backup
spec:
  schedule: "0 3 * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers:
            - name: backup
              image: bitnami/postgresql:16
---
apiVersion: v1
kind: Pod
metadata:
  name: debug-target
spec:
  containers:
    - name: app
      image: nginx:1.27
  ephemeralContainers:
    - name: debugger
      image: busybox
---
apiVersion: v1
kind: List
items:
  - apiVersion: apps/v1
    kind: DaemonSet
    metadata: { name: agent }
    spec:
      template:
        spec:
          containers:
            - name: agent
              image: ghcr.io/example/agent:0.9
  - apiVersion: v1
    kind: Service
    metadata: { name: agent }
    spec: { ports: [{ port: 80 }] }
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  image: redis:7
  sidecar: "docker.io/library/envoy:v1.30"
  containers: |
    - name: fake
      image: mysql:8
`

const EXPECTED = [
  'registry.example.com/team/migrate:v3',
  'docker.io/library/nginx:1.27',
  `quay.io/prometheus/nginx-exporter@${SHA}`,
  'docker.io/bitnami/postgresql:16',
  'docker.io/library/busybox:latest',
  'ghcr.io/example/agent:0.9',
].map((line) => `${line}\n`).join('')

async function flotilla (args: string[], input?: string): Promise<CommandResult> {
  const [cmd, argv] = flotillaCommand(args)
  return await runCommand(cmd, argv, { timeoutMs: 30_000, env: { ...process.env, FLOTILLA_CONFIG: '' }, ...(input === undefined ? {} : { input }) })
}

/** A user error: exactly one `flotilla: …` line on stderr, nothing on stdout, exit 1. */
function assertOneLineFailure (r: CommandResult, pattern: RegExp): void {
  assert.equal(r.code, 1, r.stderr)
  assert.equal(r.stdout, '')
  const lines = r.stderr.split('\n').filter((l) => l !== '')
  assert.equal(lines.length, 1, r.stderr)
  assert.match(lines[0] ?? '', /^flotilla: /)
  assert.match(lines[0] ?? '', pattern)
}

void describe('flotilla images (CLI)', () => {
  let tmp: TempDir
  let file: string

  before(async () => {
    tmp = await makeTempDir('cli-images')
    file = join(tmp.path, 'app.yaml')
    await writeFile(file, MANIFESTS)
  })
  after(async () => { await tmp.cleanup() })

  void test('issue 12 check 4: exactly the workloads\' images, each once, normalised; nothing from the ConfigMap', async () => {
    const r = await flotilla(['images', '--from-manifests', file])
    assert.equal(r.code, 0, r.stderr)
    assert.equal(r.stdout, EXPECTED)
    assert.equal(r.stderr, '')
  })

  void test('rendered Helm output on stdin with -', async () => {
    const r = await flotilla(['images', '--from-manifests', '-'], MANIFESTS)
    assert.equal(r.code, 0, r.stderr)
    assert.equal(r.stdout, EXPECTED)
  })

  void test('a directory, recursively, and --from-manifests repeated: one list, each image once', async () => {
    const dir = join(tmp.path, 'manifests')
    await mkdir(join(dir, 'base'), { recursive: true })
    await writeFile(join(dir, 'base', 'all.yaml'), MANIFESTS)
    await writeFile(join(dir, 'extra.yml'), 'kind: Job\nmetadata: { name: once }\nspec: { template: { spec: { containers: [{ name: j, image: "alpine:3.20" }] } } }\n')
    await writeFile(join(dir, 'notes.txt'), 'image: never:1\n')
    const chart = join(tmp.path, 'Chart.yaml')
    await writeFile(chart, 'apiVersion: v2\nname: web\nversion: 1.0.0\nannotations:\n  helm.sh/images: |\n    - name: operand\n      image: nginx:1.27\n    - name: sidecar\n      image: envoyproxy/envoy:v1.30.1\n')
    const r = await flotilla(['images', '--from-manifests', dir, '--from-manifests', chart])
    assert.equal(r.code, 0, r.stderr)
    assert.equal(r.stdout, `${EXPECTED}docker.io/library/alpine:3.20\ndocker.io/envoyproxy/envoy:v1.30.1\n`)
  })

  void test('an image that does not parse: a warning on stderr naming the object and the value; the others printed, exit 0', async () => {
    const bad = join(tmp.path, 'bad-image.yaml')
    await writeFile(bad, 'kind: Pod\nmetadata: { name: p }\nspec:\n  containers:\n    - { name: a, image: "{{ .Values.image }}" }\n    - { name: b, image: "busybox:1.36" }\n')
    const r = await flotilla(['images', '--from-manifests', bad])
    assert.equal(r.code, 0, r.stderr)
    assert.equal(r.stdout, 'docker.io/library/busybox:1.36\n')
    assert.match(r.stderr, /^flotilla: warning: Pod\/p containers\[a\]: image "\{\{ \.Values\.image \}\}" is not a valid reference .*\n$/)
  })

  void test('no --from-manifests: one usage line, exit 1', async () => {
    assertOneLineFailure(await flotilla(['images']), /--from-manifests PATH/)
  })

  void test('a file that is not YAML: one line naming the file and the line, exit 1', async () => {
    const broken = join(tmp.path, 'broken.yaml')
    await writeFile(broken, 'kind: Pod\nspec:\n  containers: [\n')
    assertOneLineFailure(await flotilla(['images', '--from-manifests', broken]), new RegExp(`${broken.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}:\\d+:\\d+: not valid YAML`))
  })

  void test('a path that does not exist: one line, exit 1', async () => {
    assertOneLineFailure(await flotilla(['images', '--from-manifests', join(tmp.path, 'nope')]), /nope: cannot read manifests \(ENOENT/)
  })
})
