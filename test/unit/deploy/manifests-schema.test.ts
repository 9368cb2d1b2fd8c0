// Every rendered object of every role, validated against the Kubernetes API schemas (kubernetes-models), as
// built and as the YAML output reads back.
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { DaemonSet } from 'kubernetes-models/apps/v1/DaemonSet'
import { Deployment } from 'kubernetes-models/apps/v1/Deployment'
import { StatefulSet } from 'kubernetes-models/apps/v1/StatefulSet'
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy'
import { ClusterRole } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRole'
import { ClusterRoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRoleBinding'
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap'
import { Service } from 'kubernetes-models/v1/Service'
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount'
import { parseAllDocuments } from 'yaml'
import { buildAgentRestoreManifests } from '../../../src/deploy/agent-restore-manifests.js'
import { DEFAULT_IMAGE } from '../../../src/deploy/default-image.js'
import { MANIFEST_ROLES, type KubeObject } from '../../../src/deploy/manifest.js'
import { buildManifests, renderAgentRestoreManifests, renderManifests } from '../../../src/deploy/render-manifests.js'

const MODELS: Record<string, new (data: never) => { validate: () => void }> = {
  'apps/v1/DaemonSet': DaemonSet,
  'apps/v1/Deployment': Deployment,
  'apps/v1/StatefulSet': StatefulSet,
  'networking.k8s.io/v1/NetworkPolicy': NetworkPolicy,
  'rbac.authorization.k8s.io/v1/ClusterRole': ClusterRole,
  'rbac.authorization.k8s.io/v1/ClusterRoleBinding': ClusterRoleBinding,
  'v1/ConfigMap': ConfigMap,
  'v1/Service': Service,
  'v1/ServiceAccount': ServiceAccount,
}

function validate (object: KubeObject): void {
  const Model = MODELS[`${object.apiVersion}/${object.kind}`]
  assert.ok(Model !== undefined, `no schema for ${object.apiVersion} ${object.kind}`)
  // validate() throws with the path of the first violation.
  new Model(structuredClone(object) as never).validate()
}

const OPTION_SETS = [
  { namespace: 'flotilla', image: DEFAULT_IMAGE },
  { namespace: 'registry-system', image: 'registry.example:5000/team/flotilla@sha256:' + 'a'.repeat(64) },
]

describe('manifests against the Kubernetes API schemas', () => {
  for (const options of OPTION_SETS) {
    for (const role of MANIFEST_ROLES) {
      test(`${role} in ${options.namespace}: every object as built`, () => {
        const { manifests } = buildManifests(role, options)
        assert.ok(manifests.length > 0)
        for (const { object } of manifests) validate(object)
      })

      test(`${role} in ${options.namespace}: every document of the YAML`, () => {
        const docs = parseAllDocuments(renderManifests(role, options))
        assert.equal(docs.length, buildManifests(role, options).manifests.length)
        for (const doc of docs) {
          assert.deepEqual(doc.errors, [])
          validate(doc.toJS() as KubeObject)
        }
      })
    }

    test(`agent uninstall step in ${options.namespace}`, () => {
      for (const { object } of buildAgentRestoreManifests(options).manifests) validate(object)
      for (const doc of parseAllDocuments(renderAgentRestoreManifests(options))) validate(doc.toJS() as KubeObject)
    })
  }

  test('the validator catches a broken object (the checks above can fail)', () => {
    const { manifests } = buildManifests('agent', OPTION_SETS[0] as (typeof OPTION_SETS)[0])
    const daemonSet = structuredClone(manifests.find((m) => m.object.kind === 'DaemonSet')?.object) as unknown as
      { spec: { template: { spec: { containers: Array<{ ports: Array<{ containerPort: unknown }> }> } } } }
    const port = daemonSet.spec.template.spec.containers[0]?.ports[0]
    assert.ok(port !== undefined)
    port.containerPort = 'five thousand'
    assert.throws(() => { validate(daemonSet as unknown as KubeObject) }, /containerPort/)
  })
})
