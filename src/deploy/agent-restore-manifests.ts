import type { IDaemonSet } from 'kubernetes-models/apps/v1/DaemonSet'
import { AGENT } from './agent-manifests.js'
import { resources, securityContext } from './container-defaults.js'
import { metadata, selectorLabels, validateDeployOptions, type DeployOptions, type RoleManifests } from './manifest.js'

export const AGENT_RESTORE = {
  component: 'agent-restore',
  name: 'flotilla-agent-restore',
  /** Holds the pod up once the restore ran, so that `kubectl rollout status` says every node is done. */
  pauseImage: 'registry.k8s.io/pause:3.10',
} as const

/**
 * The uninstall step: on every node, `flotilla containerd restore` puts back the hosts.toml files the agent's init
 * container replaced (byte for byte) and removes the ones it created. Applied after the agent is deleted, waited
 * for with `kubectl rollout status`, then deleted itself.
 */
export function buildAgentRestoreManifests (options: DeployOptions): RoleManifests {
  const { namespace, image } = validateDeployOptions(options)
  const labels = selectorLabels(AGENT_RESTORE.component)
  const daemonSet: IDaemonSet = {
    apiVersion: 'apps/v1', kind: 'DaemonSet', metadata: metadata(AGENT_RESTORE.name, AGENT_RESTORE.component, namespace),
    spec: {
      selector: { matchLabels: labels },
      template: {
        metadata: { labels },
        spec: {
          priorityClassName: 'system-node-critical',
          tolerations: [{ operator: 'Exists' }],
          nodeSelector: { 'kubernetes.io/os': 'linux' },
          automountServiceAccountToken: false,
          enableServiceLinks: false,
          initContainers: [{
            name: 'containerd-restore',
            image,
            imagePullPolicy: 'IfNotPresent',
            args: ['containerd', 'restore', '--certs-dir', AGENT.certsDir],
            securityContext: securityContext({ asRoot: true }),
            resources: resources(128, 10),
            volumeMounts: [{ name: 'certs-d', mountPath: AGENT.certsDir }],
          }],
          containers: [{
            name: 'done',
            image: AGENT_RESTORE.pauseImage,
            imagePullPolicy: 'IfNotPresent',
            securityContext: securityContext({ asRoot: false }),
            resources: resources(16, 1),
          }],
          volumes: [{ name: 'certs-d', hostPath: { path: AGENT.certsDir, type: 'DirectoryOrCreate' } }],
        },
      },
    },
  }
  return {
    requiredSecrets: [],
    manifests: [{
      object: daemonSet,
      comment: 'Uninstall step: restores containerd\'s certs.d on every node (flotilla containerd restore). Apply after deleting\n' +
        'the agent, wait for `kubectl rollout status`, then delete this too.',
    }],
  }
}
