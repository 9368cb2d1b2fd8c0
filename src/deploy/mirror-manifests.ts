import type { IStatefulSet } from 'kubernetes-models/apps/v1/StatefulSet'
import type { IConfigMap } from 'kubernetes-models/v1/ConfigMap'
import type { IService } from 'kubernetes-models/v1/Service'
import { NON_ROOT_UID, SERVER_POD_DEFAULTS, serverContainer } from './container-defaults.js'
import { configAnnotation, metadata, selectorLabels, validateDeployOptions, type DeployOptions, type RoleManifests } from './manifest.js'

export const MIRROR = {
  component: 'mirror',
  name: 'flotilla-mirror',
  configMap: 'flotilla-mirror-config',
  htpasswdSecret: 'flotilla-mirror-htpasswd',
  tlsSecret: 'flotilla-mirror-tls',
  port: 5000,
  dataDir: '/var/lib/flotilla',
  configDir: '/etc/flotilla/config',
  authDir: '/etc/flotilla/auth',
  tlsDir: '/etc/flotilla/tls',
  storage: '50Gi',
  memoryMiB: 1024,
  cpuMillis: 250,
} as const

/** The central mirror's default configuration (issue 14's keys): HTTPS, htpasswd clients. */
export const DEFAULT_MIRROR_CONFIG = [
  '# flotilla central mirror (flotilla serve --config): a pull-through cache agents and other clusters chain to.',
  '# The StatefulSet\'s environment sets role, listen and dataDir; the paths below are where its Secrets are mounted.',
  'tls:',
  `  cert: ${MIRROR.tlsDir}/tls.crt`,
  `  key: ${MIRROR.tlsDir}/tls.key`,
  'auth:',
  `  htpasswd: ${MIRROR.authDir}/htpasswd     # bcrypt entries (htpasswd -B), reloaded when the Secret changes`,
  '  allowCidrs: []                           # clients admitted without a password, e.g. [10.0.0.0/8]',
  '',
].join('\n')

/** The central mirror: one replica with a persistent store, HTTPS from a Secret, clients from an htpasswd Secret. */
export function buildMirrorManifests (options: DeployOptions): RoleManifests {
  const { namespace, image, configYaml = DEFAULT_MIRROR_CONFIG } = validateDeployOptions(options)
  const labels = selectorLabels(MIRROR.component)
  const meta = (name: string): ReturnType<typeof metadata> => metadata(name, MIRROR.component, namespace)

  const config: IConfigMap = { apiVersion: 'v1', kind: 'ConfigMap', metadata: meta(MIRROR.configMap), data: { 'config.yaml': configYaml } }
  const service: IService = {
    apiVersion: 'v1', kind: 'Service', metadata: meta(MIRROR.name),
    spec: { selector: labels, ports: [{ name: 'https', port: MIRROR.port, targetPort: 'registry', protocol: 'TCP' }] },
  }
  const statefulSet: IStatefulSet = {
    apiVersion: 'apps/v1', kind: 'StatefulSet', metadata: meta(MIRROR.name),
    spec: {
      serviceName: MIRROR.name,
      replicas: 1,
      selector: { matchLabels: labels },
      template: {
        metadata: { labels, annotations: configAnnotation(configYaml) },
        spec: {
          ...SERVER_POD_DEFAULTS,
          // The volume's files belong to our group, so the non-root user can write the store.
          securityContext: { fsGroup: NON_ROOT_UID, fsGroupChangePolicy: 'OnRootMismatch' },
          containers: [serverContainer({
            role: 'mirror', image, port: MIRROR.port, scheme: 'HTTPS', configDir: MIRROR.configDir, dataDir: MIRROR.dataDir,
            memoryMiB: MIRROR.memoryMiB, cpuMillis: MIRROR.cpuMillis,
            mounts: [
              { name: 'htpasswd', mountPath: MIRROR.authDir, readOnly: true },
              { name: 'tls', mountPath: MIRROR.tlsDir, readOnly: true },
            ],
          })],
          volumes: [
            { name: 'config', configMap: { name: MIRROR.configMap } },
            { name: 'htpasswd', secret: { secretName: MIRROR.htpasswdSecret, defaultMode: 0o440 } },
            { name: 'tls', secret: { secretName: MIRROR.tlsSecret, defaultMode: 0o440 } },
            { name: 'tmp', emptyDir: { sizeLimit: '64Mi' } },
          ],
        },
      },
      volumeClaimTemplates: [{
        apiVersion: 'v1', kind: 'PersistentVolumeClaim',
        metadata: { name: 'data', labels },
        spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: MIRROR.storage } } },
      }],
    },
  }
  return {
    requiredSecrets: [
      { name: MIRROR.htpasswdSecret, create: [`htpasswd -cB htpasswd USER`, `kubectl -n NAMESPACE create secret generic ${MIRROR.htpasswdSecret} --from-file=htpasswd`] },
      { name: MIRROR.tlsSecret, create: [`kubectl -n NAMESPACE create secret tls ${MIRROR.tlsSecret} --cert=tls.crt --key=tls.key`] },
    ],
    manifests: [
      { object: config, comment: 'flotilla serve --config for the central mirror.' },
      { object: service, comment: 'Inside the cluster; other clusters need a LoadBalancer or an Ingress passing TLS through.' },
      { object: statefulSet, comment: 'One replica, its store on a PersistentVolume; non-root, no capabilities, read-only root filesystem.' },
    ],
  }
}
