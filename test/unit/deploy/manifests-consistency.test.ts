// Our own checks of the rendered manifests, beyond the API schemas: probes, resources, security context, and
// names that must agree across objects (selectors, service account, mounted ConfigMaps and Secrets, bootstrap).
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import type { IPodSpec } from 'kubernetes-models/v1/PodSpec'
import { OPTIONS } from '../../../src/config/options.js'
import { buildAgentRestoreManifests } from '../../../src/deploy/agent-restore-manifests.js'
import { HEAP_SHARE } from '../../../src/deploy/container-defaults.js'
import { DEFAULT_IMAGE } from '../../../src/deploy/default-image.js'
import { MANIFEST_ROLES, type DeployOptions, type RoleManifests } from '../../../src/deploy/manifest.js'
import { buildManifests } from '../../../src/deploy/render-manifests.js'
import { containersOf, envOf, mebibytes, objectsOf, workloadsOf } from './pod-template.js'

const CLUSTER_SCOPED = new Set(['ClusterRole', 'ClusterRoleBinding'])
/** Environment the manifests set that is not a flotilla option: the downward API and Node. */
const OTHER_ENV = new Set(['NODE_NAME', 'HOST_IP', 'NODE_OPTIONS'])
const OPTION_ENV = new Set<string>(OPTIONS.flatMap((d) => 'env' in d ? [d.env] : []))

const CUSTOM: DeployOptions = { namespace: 'edge-registry', image: 'registry.example:5000/ops/flotilla:9.9.9' }
const SETS: Array<{ label: string, build: (o: DeployOptions) => RoleManifests, isRestore?: true }> = [
  ...MANIFEST_ROLES.map((role) => ({ label: role, build: (o: DeployOptions) => buildManifests(role, o) })),
  { label: 'agent uninstall step', build: buildAgentRestoreManifests, isRestore: true },
]

for (const set of SETS) {
  describe(`${set.label} manifests`, () => {
    const { manifests, requiredSecrets } = set.build(CUSTOM)
    const workloads = workloadsOf(manifests)

    test('one workload; --namespace on every namespaced object, none on cluster-scoped ones', () => {
      assert.equal(workloads.length, 1)
      for (const { object } of manifests) {
        assert.equal(object.metadata?.namespace, CLUSTER_SCOPED.has(object.kind) ? undefined : CUSTOM.namespace, `${object.kind} ${object.metadata?.name}`)
      }
    })

    test('--image in every flotilla container (init containers too)', () => {
      for (const w of workloads) {
        const { init, main } = containersOf(w)
        for (const c of [...init, ...(set.isRestore === true ? [] : main)]) assert.equal(c.image, CUSTOM.image, c.name)
      }
      const defaults = workloadsOf(set.build({ namespace: 'flotilla', image: DEFAULT_IMAGE }).manifests)
      assert.ok(defaults.every((w) => containersOf(w).init.concat(set.isRestore === true ? [] : containersOf(w).main).every((c) => c.image === DEFAULT_IMAGE)))
    })

    test('security context: no capabilities, no escalation, read-only root; non-root except the node agent', () => {
      for (const w of workloads) {
        const { init, main } = containersOf(w)
        for (const c of [...init, ...main]) {
          const sc = c.securityContext
          assert.equal(sc?.readOnlyRootFilesystem, true, c.name)
          assert.equal(sc?.allowPrivilegeEscalation, false, c.name)
          assert.equal(sc?.privileged, false, c.name)
          assert.deepEqual(sc?.capabilities, { drop: ['ALL'] }, c.name)
          assert.equal(sc?.seccompProfile?.type, 'RuntimeDefault', c.name)
          // Only what touches the node's root-owned files runs as uid 0 (and even that with no capability).
          const touchesNode = set.label.startsWith('agent') && c.image !== 'registry.k8s.io/pause:3.10'
          if (touchesNode) assert.equal(sc?.runAsUser, 0, c.name)
          else assert.ok(sc?.runAsNonRoot === true && typeof sc.runAsUser === 'number' && sc.runAsUser > 0, c.name)
        }
      }
    })

    test('resources: memory request = limit, a CPU request; Node\'s heap sized from the limit', () => {
      for (const w of workloads) {
        const { init, main } = containersOf(w)
        for (const c of [...init, ...main]) {
          const memory = c.resources?.limits?.memory
          assert.ok(memory !== undefined, c.name)
          assert.equal(c.resources?.requests?.memory, memory, c.name)
          assert.ok(c.resources?.requests?.cpu !== undefined, c.name)
        }
        for (const c of set.isRestore === true ? [] : main) {
          const limit = mebibytes(c.resources?.limits?.memory)
          assert.equal(envOf(c, 'NODE_OPTIONS'), `--max-old-space-size=${Math.floor(limit * HEAP_SHARE)}`, c.name)
        }
      }
    })

    if (set.isRestore !== true) {
      test('startup, readiness (/readyz) and liveness (/healthz) probes on a declared port', () => {
        for (const w of workloads) {
          for (const c of containersOf(w).main) {
            const ports = new Set((c.ports ?? []).map((p) => p.name))
            assert.equal(c.startupProbe?.httpGet?.path, '/healthz', c.name)
            assert.equal(c.readinessProbe?.httpGet?.path, '/readyz', c.name)
            assert.equal(c.livenessProbe?.httpGet?.path, '/healthz', c.name)
            for (const p of [c.startupProbe, c.readinessProbe, c.livenessProbe]) assert.ok(ports.has(String(p?.httpGet?.port)), c.name)
          }
        }
      })

      test('every FLOTILLA_* variable is a declared option', () => {
        for (const w of workloads) {
          for (const c of containersOf(w).main) {
            for (const e of c.env ?? []) assert.ok(OPTION_ENV.has(e.name) || OTHER_ENV.has(e.name), `${c.name}: ${e.name}`)
          }
        }
      })
    }

    test('selectors select the pods; Services reach a declared container port', () => {
      for (const w of workloads) {
        const labels = w.spec.template.metadata?.labels ?? {}
        for (const [k, v] of Object.entries(w.spec.selector.matchLabels)) assert.equal(labels[k], v, `${w.kind} selector ${k}`)
        const ports = new Set(containersOf(w).main.flatMap((c) => (c.ports ?? []).map((p) => p.name)))
        for (const svc of objectsOf(manifests, 'Service') as unknown as Array<{ spec: { selector: Record<string, string>, ports: Array<{ targetPort: unknown }> } }>) {
          for (const [k, v] of Object.entries(svc.spec.selector)) assert.equal(labels[k], v, `Service selector ${k}`)
          for (const p of svc.spec.ports) assert.ok(ports.has(String(p.targetPort)), `targetPort ${String(p.targetPort)}`)
        }
      }
    })

    test('mounts name declared volumes; every volume is mounted; mounted ConfigMaps are rendered, Secrets documented', () => {
      const configMaps = new Set(objectsOf(manifests, 'ConfigMap').map((o) => o.metadata?.name))
      const secrets = new Set(requiredSecrets.map((s) => s.name))
      for (const w of workloads) {
        const spec = w.spec.template.spec as IPodSpec
        const claims = ((w.spec as { volumeClaimTemplates?: Array<{ metadata?: { name?: string } }> }).volumeClaimTemplates ?? []).map((c) => c.metadata?.name)
        const volumes = new Set([...(spec.volumes ?? []).map((v) => v.name), ...claims])
        const mounted = new Set<string>()
        for (const c of [...(spec.initContainers ?? []), ...spec.containers]) {
          for (const m of c.volumeMounts ?? []) {
            assert.ok(volumes.has(m.name), `${c.name} mounts ${m.name}`)
            mounted.add(m.name)
          }
        }
        assert.deepEqual([...volumes].sort(), [...mounted].sort())
        for (const v of spec.volumes ?? []) {
          if (v.configMap !== undefined) assert.ok(configMaps.has(v.configMap.name), `ConfigMap ${v.configMap.name}`)
          if (v.secret !== undefined) assert.ok(secrets.has(String(v.secret.secretName)), `Secret ${v.secret.secretName}`)
        }
      }
      for (const s of requiredSecrets) assert.ok(s.create.some((line) => line.includes(s.name)), `how to create ${s.name}`)
    })
  })
}
