import type { IDeployment } from 'kubernetes-models/apps/v1/Deployment'
import type { IConfigMap } from 'kubernetes-models/v1/ConfigMap'
import type { IService } from 'kubernetes-models/v1/Service'
import { SERVER_POD_DEFAULTS, serverContainer } from './container-defaults.js'
import { configAnnotation, metadata, selectorLabels, validateDeployOptions, type DeployOptions, type RoleManifests } from './manifest.js'

export const REDIRECTOR = {
  component: 'redirector',
  name: 'flotilla-redirector',
  configMap: 'flotilla-redirector-config',
  port: 5000,
  dataDir: '/var/lib/flotilla',
  configDir: '/etc/flotilla/config',
  replicas: 2,
  memoryMiB: 256,
  cpuMillis: 100,
} as const

/** The redirector's default configuration (issue 15's keys): the region table lives here, reloaded on change. */
export const DEFAULT_REDIRECTOR_CONFIG = [
  '# flotilla redirector (flotilla serve --config): manifests from the origin, blobs redirected to the nearest region.',
  '# The Deployment\'s environment sets role and listen. This ConfigMap is the region table: edit it and the redirector reloads it (a bad table keeps the last good one).',
  'redirect:',
  '  origin: https://registry.example.com          # the source of truth: manifests, tags, and blobs no region has',
  '  regions: []',
  '  # - name: eu-west',
  '  #   cidrs: [10.1.0.0/16, 2001:db8:1::/48]',
  '  #   blobBase: https://eu-west.mirror.example.com',
  '  trustedProxies: []                            # X-Forwarded-For is believed only from these, e.g. [10.0.0.0/8]',
  '  existenceTTL: 10m',
  '',
].join('\n')

/** The redirector: a stateless Deployment behind a Service, its region table in a ConfigMap. */
export function buildRedirectorManifests (options: DeployOptions): RoleManifests {
  const { namespace, image, configYaml = DEFAULT_REDIRECTOR_CONFIG } = validateDeployOptions(options)
  const labels = selectorLabels(REDIRECTOR.component)
  const meta = (name: string): ReturnType<typeof metadata> => metadata(name, REDIRECTOR.component, namespace)

  const config: IConfigMap = { apiVersion: 'v1', kind: 'ConfigMap', metadata: meta(REDIRECTOR.configMap), data: { 'config.yaml': configYaml } }
  const service: IService = {
    apiVersion: 'v1', kind: 'Service', metadata: meta(REDIRECTOR.name),
    spec: { selector: labels, ports: [{ name: 'http', port: REDIRECTOR.port, targetPort: 'registry', protocol: 'TCP' }] },
  }
  const deployment: IDeployment = {
    apiVersion: 'apps/v1', kind: 'Deployment', metadata: meta(REDIRECTOR.name),
    spec: {
      replicas: REDIRECTOR.replicas,
      selector: { matchLabels: labels },
      template: {
        metadata: { labels, annotations: configAnnotation(configYaml) },
        spec: {
          ...SERVER_POD_DEFAULTS,
          // Replicas on different nodes where there are several.
          topologySpreadConstraints: [{ maxSkew: 1, topologyKey: 'kubernetes.io/hostname', whenUnsatisfiable: 'ScheduleAnyway', labelSelector: { matchLabels: labels } }],
          containers: [serverContainer({
            role: 'redirector', image, port: REDIRECTOR.port, scheme: 'HTTP', configDir: REDIRECTOR.configDir, dataDir: REDIRECTOR.dataDir,
            memoryMiB: REDIRECTOR.memoryMiB, cpuMillis: REDIRECTOR.cpuMillis,
          })],
          volumes: [
            // Cached manifests only: a new replica fills its own from the origin.
            { name: 'data', emptyDir: { sizeLimit: '1Gi' } },
            { name: 'config', configMap: { name: REDIRECTOR.configMap } },
            { name: 'tmp', emptyDir: { sizeLimit: '64Mi' } },
          ],
        },
      },
    },
  }
  return {
    requiredSecrets: [],
    manifests: [
      { object: config, comment: 'flotilla serve --config for the redirector, with its region table.' },
      { object: service, comment: 'Behind an Ingress that terminates TLS: list its addresses in redirect.trustedProxies.' },
      { object: deployment, comment: 'Stateless; non-root, no capabilities, read-only root filesystem.' },
    ],
  }
}
