// The node agent's manifests: what the agent needs on its node, wired consistently.
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import type { IClusterRole } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRole'
import type { IClusterRoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRoleBinding'
import type { INetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy'
import type { IConfigMap } from 'kubernetes-models/v1/ConfigMap'
import type { IService } from 'kubernetes-models/v1/Service'
import type { IServiceAccount } from 'kubernetes-models/v1/ServiceAccount'
import { parse as parseYaml } from 'yaml'
import { buildConfig } from '../../../src/config/load-config.js'
import { DEFAULT_REGISTRIES } from '../../../src/config/registries.js'
import { AGENT, buildAgentManifests } from '../../../src/deploy/agent-manifests.js'
import { parseBootstrapTarget } from '../../../src/p2p/bootstrap-target.js'
import { parsePrecacheSpec } from '../../../src/precache/precache-spec.js'
import { containersOf, envOf, onlyOf, workloadsOf, type Workload } from './pod-template.js'

const OPTIONS = { namespace: 'nodes', image: 'example.test/flotilla:1' }

describe('agent manifests', () => {
  const { manifests } = buildAgentManifests(OPTIONS)
  const ds = onlyOf<Workload>(manifests, 'DaemonSet')
  const pod = ds.spec.template.spec
  assert.ok(pod !== undefined)
  const { init, main } = containersOf(ds)
  const agent = main[0]
  assert.ok(agent !== undefined)
  const mountOf = (volume: string): { mountPath: string, readOnly?: boolean } | undefined => agent.volumeMounts?.find((m) => m.name === volume)
  const volumeOf = (name: string): NonNullable<typeof pod.volumes>[number] | undefined => pod.volumes?.find((v) => v.name === name)

  test('a DaemonSet on every node: all taints tolerated, system-node-critical, host network with cluster DNS', () => {
    assert.deepEqual(pod.tolerations, [{ operator: 'Exists' }])
    assert.equal(pod.priorityClassName, 'system-node-critical')
    assert.equal(pod.hostNetwork, true)
    assert.equal(pod.dnsPolicy, 'ClusterFirstWithHostNet')
  })

  test('registry API on every node address (loopback for containerd), peers told the node IP; p2p on the node IP', () => {
    assert.equal(envOf(agent, 'FLOTILLA_LISTEN'), `0.0.0.0:${AGENT.registryPort}`)
    assert.equal(envOf(agent, 'FLOTILLA_PEER_ADDRESS'), `$(HOST_IP):${AGENT.registryPort}`)
    assert.equal(envOf(agent, 'FLOTILLA_P2P_LISTEN'), `/ip4/$(HOST_IP)/tcp/${AGENT.p2pPort}`)
    assert.deepEqual(agent.env?.find((e) => e.name === 'HOST_IP')?.valueFrom, { fieldRef: { fieldPath: 'status.hostIP' } })
    assert.deepEqual(agent.env?.find((e) => e.name === 'NODE_NAME')?.valueFrom, { fieldRef: { fieldPath: 'spec.nodeName' } })
    // $(HOST_IP) is expanded by the kubelet only when HOST_IP is defined earlier in the list.
    const names = agent.env?.map((e) => e.name) ?? []
    assert.ok(names.indexOf('HOST_IP') < names.indexOf('FLOTILLA_PEER_ADDRESS'))
    assert.ok(names.indexOf('HOST_IP') < names.indexOf('FLOTILLA_P2P_LISTEN'))
  })

  test('the dns: bootstrap name is the headless Service, which publishes not-ready agents on the p2p port', () => {
    const target = parseBootstrapTarget(envOf(agent, 'FLOTILLA_BOOTSTRAP') ?? '')
    assert.equal(target.kind, 'dns')
    const svc = onlyOf<IService>(manifests, 'Service')
    assert.equal(target.kind === 'dns' ? target.name : '', svc.metadata?.name)
    assert.equal(svc.spec?.clusterIP, 'None')
    assert.equal(svc.spec?.publishNotReadyAddresses, true)
    assert.deepEqual(svc.spec?.ports?.map((p) => p.port), [AGENT.p2pPort])
  })

  test('the ServiceAccount the pods run as is the one bound to a role that gets nodes', () => {
    const sa = onlyOf<IServiceAccount>(manifests, 'ServiceAccount')
    const role = onlyOf<IClusterRole>(manifests, 'ClusterRole')
    const binding = onlyOf<IClusterRoleBinding>(manifests, 'ClusterRoleBinding')
    assert.equal(pod.serviceAccountName, sa.metadata?.name)
    assert.deepEqual(binding.subjects, [{ kind: 'ServiceAccount', name: sa.metadata?.name, namespace: OPTIONS.namespace }])
    assert.equal(binding.roleRef.name, role.metadata?.name)
    assert.deepEqual(role.rules, [{ apiGroups: [''], resources: ['nodes'], verbs: ['get'] }])
  })

  test('node paths: data dir on a hostPath, containerd content dir read-only, the socket\'s directory read-only', () => {
    assert.equal(volumeOf('data')?.hostPath?.path, envOf(agent, 'FLOTILLA_DATA_DIR'))
    assert.equal(mountOf('data')?.mountPath, envOf(agent, 'FLOTILLA_DATA_DIR'))
    assert.equal(volumeOf('containerd-content')?.hostPath?.path, AGENT.contentDir)
    assert.deepEqual(mountOf('containerd-content'), { name: 'containerd-content', mountPath: envOf(agent, 'FLOTILLA_CONTAINERD_CONTENT_DIR'), readOnly: true })
    assert.ok(envOf(agent, 'FLOTILLA_CONTAINERD_SOCKET')?.startsWith(`${mountOf('containerd-socket')?.mountPath}/`))
    assert.equal(mountOf('containerd-socket')?.readOnly, true)
    for (const m of agent.volumeMounts ?? []) if (m.name !== 'data' && m.name !== 'tmp') assert.equal(m.readOnly, true, m.name)
  })

  test('cluster key, configuration and pre-cache files are where the mounts put them', () => {
    const key = volumeOf('cluster-key')?.secret
    assert.equal(key?.secretName, AGENT.clusterKeySecret)
    assert.equal(envOf(agent, 'FLOTILLA_CLUSTER_KEY_FILE'), `${mountOf('cluster-key')?.mountPath}/${AGENT.clusterKeyFile}`)
    const config = onlyOf<IConfigMap>(manifests.filter((m) => m.object.metadata?.name === AGENT.configMap), 'ConfigMap')
    assert.equal(volumeOf('config')?.configMap?.name, AGENT.configMap)
    assert.deepEqual(agent.args, ['serve', '--config', `${mountOf('config')?.mountPath}/${Object.keys(config.data ?? {})[0]}`])
    const precache = onlyOf<IConfigMap>(manifests.filter((m) => m.object.metadata?.name === AGENT.precacheConfigMap), 'ConfigMap')
    assert.equal(volumeOf('precache')?.configMap?.name, AGENT.precacheConfigMap)
    assert.equal(envOf(agent, 'FLOTILLA_PRECACHE'), `${mountOf('precache')?.mountPath}/${Object.keys(precache.data ?? {})[0]}`)
    // Both files are valid as shipped.
    const configured = buildConfig(parseYaml(config.data?.['config.yaml'] ?? ''))
    assert.deepEqual([...configured.registries.keys()].sort(), Object.keys(DEFAULT_REGISTRIES).sort())
    assert.deepEqual(parsePrecacheSpec(precache.data?.['precache.yaml'] ?? '').sets, [])
  })

  test('the init container routes the configured registries to the agent, in the certs.d it mounts', () => {
    const configure = init[0]
    assert.ok(configure !== undefined && init.length === 1)
    const args = configure.args ?? []
    assert.deepEqual(args.slice(0, 2), ['containerd', 'configure'])
    const value = (flag: string): string[] => args.flatMap((a, i) => a === flag ? [args[i + 1] ?? ''] : [])
    assert.deepEqual(value('--certs-dir'), [configure.volumeMounts?.[0]?.mountPath])
    assert.equal(volumeOf('certs-d')?.hostPath?.path, AGENT.certsDir)
    // The mirror containerd dials is the agent on the node's loopback (hostNetwork), at the agent's port.
    assert.deepEqual(value('--mirror'), [`http://127.0.0.1:${envOf(agent, 'FLOTILLA_LISTEN')?.split(':')[1]}`])
    assert.deepEqual(value('--registry').sort(), Object.keys(DEFAULT_REGISTRIES).sort())
    assert.ok(value('--upstream').includes('docker.io=https://registry-1.docker.io'))
    assert.deepEqual(value('--dial-timeout'), ['200ms'])
  })

  test('a configuration file sets the registries, the ConfigMap and a new pod-template checksum', () => {
    const configYaml = 'registries:\n  registry.example:5000: { endpoint: http://10.0.0.9:5000 }\n'
    const custom = buildAgentManifests({ ...OPTIONS, configYaml })
    const customDs = workloadsOf(custom.manifests)[0]
    assert.ok(customDs !== undefined)
    const args = containersOf(customDs).init[0]?.args ?? []
    assert.deepEqual(args.filter((_, i) => args[i - 1] === '--registry'), ['registry.example:5000'])
    assert.ok(args.includes('registry.example:5000=http://10.0.0.9:5000'))
    assert.equal(onlyOf<IConfigMap>(custom.manifests.filter((m) => m.object.metadata?.name === AGENT.configMap), 'ConfigMap').data?.['config.yaml'], configYaml)
    const sum = (w: Workload): string | undefined => w.spec.template.metadata?.annotations?.['flotilla.io/config-sha256']
    assert.match(sum(customDs) ?? '', /^[0-9a-f]{64}$/)
    assert.notEqual(sum(customDs), sum(ds))
  })

  test('the NetworkPolicy admits only agents, on the p2p port (and the registry port peers fetch from)', () => {
    const np = onlyOf<INetworkPolicy>(manifests, 'NetworkPolicy')
    const labels = ds.spec.template.metadata?.labels ?? {}
    assert.deepEqual(np.spec?.podSelector?.matchLabels, ds.spec.selector.matchLabels)
    assert.deepEqual(np.spec?.policyTypes, ['Ingress'])
    assert.equal(np.spec?.ingress?.length, 1)
    const rule = np.spec?.ingress?.[0]
    for (const from of rule?.from ?? []) {
      assert.equal(from.ipBlock, undefined)
      assert.equal(from.namespaceSelector, undefined)
      for (const [k, v] of Object.entries(from.podSelector?.matchLabels ?? {})) assert.equal(labels[k], v)
    }
    assert.deepEqual(rule?.ports?.map((p) => p.port).sort(), [AGENT.registryPort, AGENT.p2pPort].sort())
  })
})
