// The mirror and the redirector: what each role's manifests must hold beyond the shared checks.
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import type { IConfigMap } from 'kubernetes-models/v1/ConfigMap'
import { parse as parseYaml } from 'yaml'
import { buildConfig } from '../../../src/config/load-config.js'
import { buildMirrorManifests, MIRROR } from '../../../src/deploy/mirror-manifests.js'
import { buildRedirectorManifests, REDIRECTOR } from '../../../src/deploy/redirector-manifests.js'
import { containersOf, envOf, onlyOf, type Workload } from './pod-template.js'

const OPTIONS = { namespace: 'registry', image: 'example.test/flotilla:2' }

describe('mirror manifests', () => {
  const { manifests, requiredSecrets } = buildMirrorManifests(OPTIONS)
  const sts = onlyOf<Workload & { spec: { volumeClaimTemplates: Array<{ metadata: { name: string } }> } }>(manifests, 'StatefulSet')
  const mirror = containersOf(sts).main[0]
  assert.ok(mirror !== undefined)
  const mountOf = (name: string): string | undefined => mirror.volumeMounts?.find((m) => m.name === name)?.mountPath

  test('a StatefulSet whose store is a PersistentVolumeClaim, probed over HTTPS', () => {
    assert.deepEqual(sts.spec.volumeClaimTemplates.map((c) => c.metadata.name), ['data'])
    assert.equal(mountOf('data'), envOf(mirror, 'FLOTILLA_DATA_DIR'))
    assert.equal(mirror.readinessProbe?.httpGet?.scheme, 'HTTPS')
  })

  test('TLS and htpasswd come from the documented Secrets, at the paths the configuration names', () => {
    assert.deepEqual(requiredSecrets.map((s) => s.name).sort(), [MIRROR.htpasswdSecret, MIRROR.tlsSecret].sort())
    assert.equal(envOf(mirror, 'FLOTILLA_ROLE'), 'mirror')
    const text = onlyOf<IConfigMap>(manifests, 'ConfigMap').data?.['config.yaml'] ?? ''
    const config = buildConfig(parseYaml(text), { role: 'mirror' })
    assert.ok(config.tls !== undefined && config.auth.htpasswd !== undefined)
    assert.equal(config.tls.cert, `${mountOf('tls')}/tls.crt`)
    assert.equal(config.tls.key, `${mountOf('tls')}/tls.key`)
    assert.equal(config.auth.htpasswd, `${mountOf('htpasswd')}/htpasswd`)
  })
})

describe('redirector manifests', () => {
  const { manifests } = buildRedirectorManifests(OPTIONS)
  const deployment = onlyOf<Workload & { spec: { replicas: number } }>(manifests, 'Deployment')

  test('a Deployment of several replicas; the region table is its ConfigMap', () => {
    assert.equal(deployment.spec.replicas, REDIRECTOR.replicas)
    assert.equal(envOf(containersOf(deployment).main[0] ?? { name: '' }, 'FLOTILLA_ROLE'), 'redirector')
    const config = parseYaml(onlyOf<IConfigMap>(manifests, 'ConfigMap').data?.['config.yaml'] ?? '') as
      { redirect: { origin: string, regions: unknown[] } }
    assert.ok(Array.isArray(config.redirect.regions))
    assert.match(config.redirect.origin, /^https:\/\//)
  })
})
