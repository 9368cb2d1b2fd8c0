import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { discoverImages } from '../../../src/discovery/discover-images.js'

const SHA = `sha256:${'a'.repeat(64)}`

function podSpec (containers: unknown[]): Record<string, unknown> {
  return { containers }
}

function workload (kind: string, spec: Record<string, unknown>): Record<string, unknown> {
  return { apiVersion: 'apps/v1', kind, metadata: { name: kind.toLowerCase() }, spec: { template: { spec } } }
}

describe('discoverImages: where each kind keeps its pods', () => {
  const one = podSpec([{ name: 'app', image: 'ghcr.io/o/app:1' }])
  const cases: Array<[string, unknown]> = [
    ['Pod', { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p' }, spec: one }],
    ['Deployment', workload('Deployment', one)],
    ['StatefulSet', workload('StatefulSet', one)],
    ['DaemonSet', workload('DaemonSet', one)],
    ['ReplicaSet', workload('ReplicaSet', one)],
    ['ReplicationController', { apiVersion: 'v1', kind: 'ReplicationController', spec: { template: { spec: one } } }],
    ['Job', { apiVersion: 'batch/v1', kind: 'Job', spec: { template: { spec: one } } }],
    ['CronJob', { apiVersion: 'batch/v1', kind: 'CronJob', spec: { schedule: '* * * * *', jobTemplate: { spec: { template: { spec: one } } } } }],
    ['PodTemplate', { apiVersion: 'v1', kind: 'PodTemplate', template: { spec: one } }],
    ['List', { apiVersion: 'v1', kind: 'List', items: [workload('Deployment', one)] }],
    ['List in a List', { kind: 'List', items: [{ kind: 'List', items: [workload('DaemonSet', one)] }] }],
    // As the API server answers a typed list: the items carry no kind.
    ['DeploymentList (items without kind)', { apiVersion: 'apps/v1', kind: 'DeploymentList', items: [{ metadata: { name: 'd' }, spec: { template: { spec: one } } }] }],
  ]
  for (const [name, doc] of cases) {
    test(name, () => {
      assert.deepEqual(discoverImages([doc]), { images: ['ghcr.io/o/app:1'], warnings: [] })
    })
  }

  test('a CronJob\'s pods are under jobTemplate, not under spec.template', () => {
    const cron = { kind: 'CronJob', spec: { template: { spec: one }, jobTemplate: { spec: { template: { spec: podSpec([{ image: 'cron:1' }]) } } } } }
    assert.deepEqual(discoverImages([cron]).images, ['docker.io/library/cron:1'])
  })
})

describe('discoverImages: container lists', () => {
  const cases: Array<[string, Record<string, unknown>]> = [
    ['containers', { containers: [{ name: 'a', image: 'a:1' }] }],
    ['initContainers', { initContainers: [{ name: 'a', image: 'a:1' }] }],
    ['ephemeralContainers', { ephemeralContainers: [{ name: 'a', image: 'a:1' }] }],
  ]
  for (const [name, spec] of cases) {
    test(name, () => {
      assert.deepEqual(discoverImages([{ kind: 'Pod', spec }]).images, ['docker.io/library/a:1'])
    })
  }

  test('all three in one pod: init containers first, as they run', () => {
    const spec = {
      containers: [{ name: 'app', image: 'app:1' }, { name: 'side', image: 'side:1' }],
      initContainers: [{ name: 'init', image: 'init:1' }],
      ephemeralContainers: [{ name: 'debug', image: 'debug:1' }],
    }
    assert.deepEqual(discoverImages([workload('Deployment', spec)]).images,
      ['docker.io/library/init:1', 'docker.io/library/app:1', 'docker.io/library/side:1', 'docker.io/library/debug:1'])
  })

  test('a container without an image (defaulted by a controller) is skipped silently', () => {
    assert.deepEqual(discoverImages([{ kind: 'Pod', spec: { containers: [{ name: 'a' }, { name: 'b', image: '' }] } }]), { images: [], warnings: [] })
  })
})

describe('discoverImages: what is not a workload', () => {
  const cases: Array<[string, unknown]> = [
    ['ConfigMap whose data looks like an image', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c' }, data: { image: 'redis:7' } }],
    ['ConfigMap shaped like a pod', { kind: 'ConfigMap', spec: { template: { spec: podSpec([{ image: 'redis:7' }]) } }, data: { containers: '[{"image":"redis:7"}]' } }],
    ['Secret', { kind: 'Secret', stringData: { image: 'redis:7' } }],
    ['custom resource', { apiVersion: 'example.com/v1', kind: 'Widget', spec: { image: 'redis:7', template: { spec: podSpec([{ image: 'redis:7' }]) } } }],
    ['no kind', { spec: podSpec([{ image: 'redis:7' }]) }],
    ['not an object', 'image: redis:7'],
    ['null (an empty document)', null],
    ['List with items that are not objects', { kind: 'List', items: ['redis:7', 7, null] }],
    ['List without items', { kind: 'List' }],
  ]
  for (const [name, doc] of cases) {
    test(name, () => {
      assert.deepEqual(discoverImages([doc]), { images: [], warnings: [] })
    })
  }

  test('a List that contains itself (YAML aliases) is walked once', () => {
    const list: Record<string, unknown> = { kind: 'List' }
    list.items = [{ kind: 'Pod', spec: podSpec([{ image: 'a' }]) }, list]
    assert.deepEqual(discoverImages([list]).images, ['docker.io/library/a:latest'])
  })
})

describe('discoverImages: normalised as containerd names images', () => {
  const cases: Array<[string, string]> = [
    ['busybox', 'docker.io/library/busybox:latest'],
    ['busybox:1.36', 'docker.io/library/busybox:1.36'],
    ['bitnami/redis:7', 'docker.io/bitnami/redis:7'],
    ['index.docker.io/library/busybox:1', 'docker.io/library/busybox:1'],
    ['registry.k8s.io/pause:3.9', 'registry.k8s.io/pause:3.9'],
    ['localhost:5000/a/b', 'localhost:5000/a/b:latest'],
    [`ghcr.io/o/r@${SHA}`, `ghcr.io/o/r@${SHA}`],
    // containerd's ParseDockerRef: with both, the digest names the image and the tag is dropped.
    [`busybox:1.36@${SHA}`, `docker.io/library/busybox@${SHA}`],
    ['  nginx:1.27  ', 'docker.io/library/nginx:1.27'],
  ]
  for (const [image, expected] of cases) {
    test(`${image.trim()} → ${expected}`, () => {
      assert.deepEqual(discoverImages([{ kind: 'Pod', spec: podSpec([{ image }]) }]), { images: [expected], warnings: [] })
    })
  }
})

describe('discoverImages: each image once, in first-seen order', () => {
  test('the same image written three ways, across objects and lists', () => {
    const docs = [
      { kind: 'Pod', spec: podSpec([{ image: 'b:1' }, { image: 'busybox' }]) },
      workload('Deployment', { initContainers: [{ image: 'docker.io/library/busybox:latest' }], containers: [{ image: 'a:1' }] }),
      { kind: 'List', items: [{ kind: 'Pod', spec: podSpec([{ image: 'index.docker.io/busybox' }, { image: 'b:1' }]) }] },
    ]
    assert.deepEqual(discoverImages(docs).images, ['docker.io/library/b:1', 'docker.io/library/busybox:latest', 'docker.io/library/a:1'])
  })
})

describe('discoverImages: the helm.sh/images annotation', () => {
  const annotation = `- name: app
  image: registry.example.com/team/app:2.1
- name: sidecar
  image: busybox:1.36
  whitelisted: true
- name: multiarch
  image: ghcr.io/o/m:1
  platforms:
    - linux/amd64
`
  test('on a Chart.yaml (annotations at the top level)', () => {
    const chart = { apiVersion: 'v2', name: 'web', version: '1.0.0', annotations: { 'helm.sh/images': annotation } }
    assert.deepEqual(discoverImages([chart]), {
      images: ['registry.example.com/team/app:2.1', 'docker.io/library/busybox:1.36', 'ghcr.io/o/m:1'],
      warnings: [],
    })
  })

  test('on any object\'s metadata.annotations, alongside its pods', () => {
    const deployment = workload('Deployment', podSpec([{ image: 'web:1' }]))
    deployment.metadata = { name: 'web', annotations: { 'helm.sh/images': '- name: operand\n  image: operand:2\n' } }
    const crd = { apiVersion: 'helm.cattle.io/v1', kind: 'HelmChart', metadata: { name: 'x', annotations: { 'helm.sh/images': '- image: quay.io/x/y:3\n' } } }
    assert.deepEqual(discoverImages([deployment, crd]).images, ['docker.io/library/operand:2', 'docker.io/library/web:1', 'quay.io/x/y:3'])
  })

  test('Artifact Hub\'s artifacthub.io/images, of the same form', () => {
    const chart = { apiVersion: 'v2', name: 'web', version: '1.0.0', annotations: { 'artifacthub.io/images': '- name: a\n  image: a:1\n' } }
    assert.deepEqual(discoverImages([chart]).images, ['docker.io/library/a:1'])
  })

  test('a Chart.yaml without the annotation, and an annotation on a ConfigMap that is not image-shaped', () => {
    const chart = { apiVersion: 'v2', name: 'web', version: '1.0.0', annotations: { 'example.com/image': 'a:1' } }
    const cm = { kind: 'ConfigMap', metadata: { name: 'c', annotations: { image: 'a:1' } }, data: { 'helm.sh/images': '- image: a:1' } }
    assert.deepEqual(discoverImages([chart, cm]), { images: [], warnings: [] })
  })

  const bad: Array<[string, string, RegExp]> = [
    ['not YAML', '- image: [a', /^Chart\/web: annotation helm\.sh\/images is not YAML/],
    ['not a list', 'image: a:1', /^Chart\/web: annotation helm\.sh\/images is not a list of \{ name, image \}/],
    ['an entry without an image', '- name: a\n- name: b\n  image: b:1\n', /^Chart\/web: annotation helm\.sh\/images has an entry without an image \(\{"name":"a"\}\)/],
  ]
  for (const [name, value, warning] of bad) {
    test(`${name}: a warning naming the chart, the rest still read`, () => {
      const chart = { apiVersion: 'v2', name: 'web', version: '1.0.0', annotations: { 'helm.sh/images': value } }
      const result = discoverImages([chart, { kind: 'Pod', spec: podSpec([{ image: 'ok:1' }]) }])
      assert.equal(result.warnings.length, 1, result.warnings.join('\n'))
      assert.match(result.warnings[0] ?? '', warning)
      assert.ok(result.images.includes('docker.io/library/ok:1'))
    })
  }
})

describe('discoverImages: an image that does not parse', () => {
  const cases: Array<[string, unknown, RegExp]> = [
    ['upper-case repository', 'Web/App:1', /^Deployment\/web containers\[app\]: image "Web\/App:1" is not a valid reference \(invalid repository name/],
    ['an unrendered template', '{{ .Values.image }}', /^Deployment\/web containers\[app\]: image "\{\{ \.Values\.image \}\}" is not a valid reference/],
    ['a bad digest', 'busybox@sha256:zz', /^Deployment\/web containers\[app\]: image "busybox@sha256:zz" is not a valid reference/],
    ['a number', 1.5, /^Deployment\/web containers\[app\]: image 1\.5 is not a string/],
  ]
  for (const [name, image, warning] of cases) {
    test(`${name}: skipped with a warning naming the object and the value`, () => {
      const deployment = workload('Deployment', podSpec([{ name: 'app', image }, { name: 'ok', image: 'ok:1' }]))
      deployment.metadata = { name: 'web' }
      const result = discoverImages([deployment])
      assert.deepEqual(result.images, ['docker.io/library/ok:1'])
      assert.equal(result.warnings.length, 1)
      assert.match(result.warnings[0] ?? '', warning)
    })
  }

  test('an object without a name is named (unnamed)', () => {
    const result = discoverImages([{ kind: 'Pod', spec: podSpec([{ name: 'x', image: 'A:B:C' }]) }])
    assert.match(result.warnings[0] ?? '', /^Pod\/\(unnamed\) containers\[x\]: image "A:B:C"/)
  })
})
