import type { IClusterRole } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRole'
import type { IClusterRoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRoleBinding'
import type { IDaemonSet } from 'kubernetes-models/apps/v1/DaemonSet'
import type { INetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy'
import type { IConfigMap } from 'kubernetes-models/v1/ConfigMap'
import type { IContainer } from 'kubernetes-models/v1/Container'
import type { IService } from 'kubernetes-models/v1/Service'
import type { IServiceAccount } from 'kubernetes-models/v1/ServiceAccount'
import { parse as parseYaml } from 'yaml'
import { buildConfig } from '../config/load-config.js'
import { DEFAULT_REGISTRIES } from '../config/registries.js'
import { heapEnv, probes, resources, securityContext } from './container-defaults.js'
import { configAnnotation, metadata, selectorLabels, validateDeployOptions, type DeployOptions, type RoleManifests } from './manifest.js'

/** Names, ports and paths of the agent's objects: the tests and the README refer to these. */
export const AGENT = {
  component: 'agent',
  name: 'flotilla-agent',
  peersService: 'flotilla-agent-peers',
  configMap: 'flotilla-agent-config',
  precacheConfigMap: 'flotilla-agent-precache',
  clusterKeySecret: 'flotilla-cluster-key',
  clusterKeyFile: 'cluster.key',
  registryPort: 5000,
  p2pPort: 5001,
  /** How the node's containerd reaches the agent (hostNetwork: the node's loopback). */
  mirrorUrl: 'http://127.0.0.1:5000',
  dialTimeout: '200ms',
  dataDir: '/var/lib/flotilla',
  certsDir: '/etc/containerd/certs.d',
  contentDir: '/var/lib/containerd/io.containerd.content.v1.content',
  socketDir: '/run/containerd',
  socket: '/run/containerd/containerd.sock',
  configDir: '/etc/flotilla/config',
  precacheDir: '/etc/flotilla/precache',
  clusterKeyDir: '/etc/flotilla/cluster-key',
  memoryMiB: 512,
  cpuMillis: 100,
} as const

/** The agent's default configuration: the registries it serves (and the init container routes to it). */
export const DEFAULT_AGENT_CONFIG = [
  '# flotilla agent configuration (flotilla serve --config): every key is in the README\'s configuration table.',
  '# The DaemonSet\'s environment wires the agent to its node (role, listen, dataDir, containerd.*, p2p.*, precache.file)',
  '# and wins over this file. The registries below are also the ones the init container routes through the agent',
  '# (certs.d/<name>/hosts.toml): after changing them, render again (flotilla manifests --role agent --config FILE).',
  'registries:',
  ...Object.entries(DEFAULT_REGISTRIES).map(([name, endpoint]) => `  ${name}: { endpoint: ${endpoint} }`),
  'store:',
  '  maxDiskPercent: 75',
  '',
].join('\n')

export const DEFAULT_PRECACHE = [
  '# Image sets every matching node keeps (pulled, pinned, refreshed); edit it and the agents follow.',
  '# sets:',
  '#   - name: base',
  '#     nodeSelector: { kubernetes.io/os: linux }',
  '#     images: [registry.k8s.io/pause:3.10]',
  'sets: []',
  '',
].join('\n')

const CLUSTER_KEY_CREATE = [
  `flotilla cluster-key > ${AGENT.clusterKeyFile}`,
  `kubectl -n NAMESPACE create secret generic ${AGENT.clusterKeySecret} --from-file=${AGENT.clusterKeyFile}`,
]

/** `--registry NAME --upstream NAME=ENDPOINT` for each registry of the configuration, as the init container passes them. */
export function configureArgs (configYaml: string): string[] {
  const config = buildConfig(parseYaml(configYaml))
  return [
    'containerd', 'configure', '--certs-dir', AGENT.certsDir, '--mirror', AGENT.mirrorUrl, '--dial-timeout', AGENT.dialTimeout,
    ...[...config.registries].flatMap(([name, r]) => ['--registry', name, '--upstream', `${name}=${r.endpoint}`]),
  ]
}

/**
 * The node agent: a DaemonSet on every node and what it needs.
 *
 * hostNetwork, not hostPort: containerd reaches the agent on the node's loopback (127.0.0.1:5000), which
 * hostPort does not offer with every CNI and which is how the agent tells its own node (admitted) from remote
 * callers (peers must sign their requests); a dead agent is then a refused connection, so containerd goes to its
 * next host at once (dial_timeout 200ms bounds the rest), and the agent serves before the node's CNI is up.
 * Peers reach it on the node IP (p2p and the registry API). The price: most CNIs do not enforce NetworkPolicy on
 * host-network pods, so the cluster key (libp2p private network, signed peer requests) is what keeps others out.
 *
 * uid 0 with every capability dropped: containerd's socket is root:root 0660, certs.d is root's 0755, and the
 * hard links that keep one copy of a blob with containerd need to own its root-owned files (protected_hardlinks).
 * As the owner of those files uid 0 needs no capability; without CAP_DAC_OVERRIDE, CAP_CHOWN or CAP_SYS_ADMIN it
 * can touch nothing else of root's that is not world-readable, and its root filesystem is read-only.
 */
export function buildAgentManifests (options: DeployOptions): RoleManifests {
  const { namespace, image, configYaml = DEFAULT_AGENT_CONFIG } = validateDeployOptions(options)
  const labels = selectorLabels(AGENT.component)
  const meta = (name: string): ReturnType<typeof metadata> => metadata(name, AGENT.component, namespace)

  const serviceAccount: IServiceAccount = { apiVersion: 'v1', kind: 'ServiceAccount', metadata: meta(AGENT.name) }
  const clusterRole: IClusterRole = {
    apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: metadata(AGENT.name, AGENT.component),
    rules: [{ apiGroups: [''], resources: ['nodes'], verbs: ['get'] }],
  }
  const clusterRoleBinding: IClusterRoleBinding = {
    apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRoleBinding', metadata: metadata(AGENT.name, AGENT.component),
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: AGENT.name },
    subjects: [{ kind: 'ServiceAccount', name: AGENT.name, namespace }],
  }
  const config: IConfigMap = { apiVersion: 'v1', kind: 'ConfigMap', metadata: meta(AGENT.configMap), data: { 'config.yaml': configYaml } }
  const precache: IConfigMap = { apiVersion: 'v1', kind: 'ConfigMap', metadata: meta(AGENT.precacheConfigMap), data: { 'precache.yaml': DEFAULT_PRECACHE } }
  const peers: IService = {
    apiVersion: 'v1', kind: 'Service', metadata: meta(AGENT.peersService),
    spec: {
      clusterIP: 'None',
      publishNotReadyAddresses: true,
      selector: labels,
      ports: [{ name: 'p2p', port: AGENT.p2pPort, targetPort: 'p2p', protocol: 'TCP' }],
    },
  }
  const networkPolicy: INetworkPolicy = {
    apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: meta(AGENT.peersService),
    spec: {
      podSelector: { matchLabels: labels },
      policyTypes: ['Ingress'],
      ingress: [{
        from: [{ podSelector: { matchLabels: labels } }],
        ports: [{ protocol: 'TCP', port: AGENT.p2pPort }, { protocol: 'TCP', port: AGENT.registryPort }],
      }],
    },
  }

  const configure: IContainer = {
    name: 'containerd-configure',
    image,
    imagePullPolicy: 'IfNotPresent',
    args: configureArgs(configYaml),
    securityContext: securityContext({ asRoot: true }),
    resources: resources(128, 10),
    volumeMounts: [{ name: 'certs-d', mountPath: AGENT.certsDir }],
  }
  const agent: IContainer = {
    name: 'agent',
    image,
    imagePullPolicy: 'IfNotPresent',
    args: ['serve', '--config', `${AGENT.configDir}/config.yaml`],
    env: [
      { name: 'NODE_NAME', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } },
      { name: 'HOST_IP', valueFrom: { fieldRef: { fieldPath: 'status.hostIP' } } },
      { name: 'FLOTILLA_ROLE', value: 'agent' },
      // Every address of the node: 127.0.0.1 for containerd, the node IP for peers (who must sign their requests).
      { name: 'FLOTILLA_LISTEN', value: `0.0.0.0:${AGENT.registryPort}` },
      { name: 'FLOTILLA_PEER_ADDRESS', value: `$(HOST_IP):${AGENT.registryPort}` },
      { name: 'FLOTILLA_P2P_LISTEN', value: `/ip4/$(HOST_IP)/tcp/${AGENT.p2pPort}` },
      // A short name: the pod's DNS search path finds the Service in its own namespace, whichever that is.
      { name: 'FLOTILLA_BOOTSTRAP', value: `dns:${AGENT.peersService}` },
      { name: 'FLOTILLA_CLUSTER_KEY_FILE', value: `${AGENT.clusterKeyDir}/${AGENT.clusterKeyFile}` },
      { name: 'FLOTILLA_DATA_DIR', value: AGENT.dataDir },
      { name: 'FLOTILLA_CONTAINERD_SOCKET', value: AGENT.socket },
      { name: 'FLOTILLA_CONTAINERD_CONTENT_DIR', value: AGENT.contentDir },
      { name: 'FLOTILLA_PRECACHE', value: `${AGENT.precacheDir}/precache.yaml` },
      heapEnv(AGENT.memoryMiB),
    ],
    ports: [
      { name: 'registry', containerPort: AGENT.registryPort, protocol: 'TCP' },
      { name: 'p2p', containerPort: AGENT.p2pPort, protocol: 'TCP' },
    ],
    ...probes('registry', 'HTTP'),
    securityContext: securityContext({ asRoot: true }),
    resources: resources(AGENT.memoryMiB, AGENT.cpuMillis),
    volumeMounts: [
      { name: 'data', mountPath: AGENT.dataDir },
      { name: 'containerd-content', mountPath: AGENT.contentDir, readOnly: true },
      { name: 'containerd-socket', mountPath: AGENT.socketDir, readOnly: true },
      // Read-only, for `kubectl exec ... flotilla containerd check`.
      { name: 'certs-d', mountPath: AGENT.certsDir, readOnly: true },
      { name: 'config', mountPath: AGENT.configDir, readOnly: true },
      { name: 'precache', mountPath: AGENT.precacheDir, readOnly: true },
      { name: 'cluster-key', mountPath: AGENT.clusterKeyDir, readOnly: true },
      { name: 'tmp', mountPath: '/tmp' },
    ],
  }
  const daemonSet: IDaemonSet = {
    apiVersion: 'apps/v1', kind: 'DaemonSet', metadata: meta(AGENT.name),
    spec: {
      selector: { matchLabels: labels },
      updateStrategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: '10%' } },
      template: {
        metadata: { labels, annotations: configAnnotation(configYaml) },
        spec: {
          serviceAccountName: AGENT.name,
          priorityClassName: 'system-node-critical',
          tolerations: [{ operator: 'Exists' }],
          nodeSelector: { 'kubernetes.io/os': 'linux' },
          hostNetwork: true,
          // Host-network pods resolve with the node's resolv.conf unless told otherwise: the dns: bootstrap needs cluster DNS.
          dnsPolicy: 'ClusterFirstWithHostNet',
          enableServiceLinks: false,
          terminationGracePeriodSeconds: 30,
          initContainers: [configure],
          containers: [agent],
          volumes: [
            { name: 'data', hostPath: { path: AGENT.dataDir, type: 'DirectoryOrCreate' } },
            // A separate mount from data: hard links across mounts fail (EXDEV), and the agent then keeps one copy per
            // node by dropping its own copy of what containerd holds (see ContainerdLinker).
            { name: 'containerd-content', hostPath: { path: AGENT.contentDir, type: 'Directory' } },
            // The directory, not the socket file: a restarted containerd makes a new socket that a file mount would miss.
            { name: 'containerd-socket', hostPath: { path: AGENT.socketDir, type: 'Directory' } },
            { name: 'certs-d', hostPath: { path: AGENT.certsDir, type: 'DirectoryOrCreate' } },
            { name: 'config', configMap: { name: AGENT.configMap } },
            { name: 'precache', configMap: { name: AGENT.precacheConfigMap } },
            { name: 'cluster-key', secret: { secretName: AGENT.clusterKeySecret, defaultMode: 0o400 } },
            { name: 'tmp', emptyDir: { sizeLimit: '64Mi' } },
          ],
        },
      },
    },
  }

  return {
    requiredSecrets: [{ name: AGENT.clusterKeySecret, create: CLUSTER_KEY_CREATE }],
    manifests: [
      { object: serviceAccount, comment: 'Reads its node (zone, labels for pre-cache nodeSelectors): get on nodes, nothing else.' },
      { object: clusterRole },
      { object: clusterRoleBinding },
      { object: config, comment: 'flotilla serve --config for every agent.' },
      { object: precache, comment: 'Pre-cache sets (watched: edits apply without a restart).' },
      { object: peers, comment: 'Headless, with not-ready addresses: what the agents find each other by (FLOTILLA_BOOTSTRAP dns:NAME).' },
      {
        object: networkPolicy,
        comment: 'Only agents on the p2p port and on the registry port peers fetch from. Most CNIs do not enforce policy on\n' +
          'host-network pods: there the cluster key keeps others out (libp2p private network, signed peer requests).',
      },
      {
        object: daemonSet,
        comment: 'hostNetwork: containerd reaches the agent on 127.0.0.1:5000 with any CNI, a dead agent is a refused connection\n' +
          '(containerd goes to its next host at once), peers use the node IP. uid 0 without capabilities: it owns containerd\'s\n' +
          'socket, certs.d and the blobs it hard-links, and nothing more; read-only root filesystem.',
      },
    ],
  }
}
