import type { IContainer } from 'kubernetes-models/v1/Container'
import type { IProbe } from 'kubernetes-models/v1/Probe'
import type { IResourceRequirements } from 'kubernetes-models/v1/ResourceRequirements'
import type { ISecurityContext } from 'kubernetes-models/v1/SecurityContext'

/** The non-root user of the mirror and the redirector (numeric, so that kubelet can enforce runAsNonRoot). */
export const NON_ROOT_UID = 65532

/** Share of the memory limit given to Node's old-generation heap; the rest is buffers, code and stacks. */
export const HEAP_SHARE = 0.75

/**
 * Every container here: no capabilities, no privilege escalation, a read-only root filesystem (what is written
 * goes to declared volumes). `asRoot` keeps uid 0 without any capability: the owner of root-owned files, and
 * nothing more (see agent-manifests.ts for why the agent needs that).
 */
export function securityContext (user: { readonly asRoot: boolean }): ISecurityContext {
  return {
    allowPrivilegeEscalation: false,
    privileged: false,
    readOnlyRootFilesystem: true,
    capabilities: { drop: ['ALL'] },
    ...(user.asRoot
      ? { runAsUser: 0, runAsGroup: 0, runAsNonRoot: false }
      : { runAsUser: NON_ROOT_UID, runAsGroup: NON_ROOT_UID, runAsNonRoot: true }),
    seccompProfile: { type: 'RuntimeDefault' },
  }
}

/**
 * Memory request = limit (the pod is never the first to be OOM-killed for exceeding a request, and the heap
 * can be sized from a number that holds); a CPU request but no CPU limit, so that a burst of pulls is not
 * throttled into containerd's timeouts.
 */
export function resources (memoryMiB: number, cpuMillis: number): IResourceRequirements {
  return {
    requests: { cpu: `${cpuMillis}m`, memory: `${memoryMiB}Mi` },
    limits: { memory: `${memoryMiB}Mi` },
  }
}

/** `NODE_OPTIONS` sizing V8's heap from the memory limit, so that Node collects garbage before the kernel kills it. */
export function heapEnv (memoryMiB: number): { name: string, value: string } {
  return { name: 'NODE_OPTIONS', value: `--max-old-space-size=${Math.floor(memoryMiB * HEAP_SHARE)}` }
}

/**
 * Startup (up to 2 minutes to open the store), readiness (/readyz: e.g. not yet among its peers) and liveness
 * (/healthz), on the registry port (the one listener that answers the probes to anyone).
 */
export function probes (port: string, scheme: 'HTTP' | 'HTTPS'): Pick<IContainer, 'startupProbe' | 'readinessProbe' | 'livenessProbe'> {
  const get = (path: string): IProbe['httpGet'] => ({ path, port, scheme })
  return {
    startupProbe: { httpGet: get('/healthz'), periodSeconds: 2, timeoutSeconds: 2, failureThreshold: 60 },
    readinessProbe: { httpGet: get('/readyz'), periodSeconds: 5, timeoutSeconds: 2, failureThreshold: 2 },
    livenessProbe: { httpGet: get('/healthz'), periodSeconds: 10, timeoutSeconds: 3, failureThreshold: 3 },
  }
}

/** The pod fields every central server (mirror, redirector) shares: no API token, no service links, 30 s to stop. */
export const SERVER_POD_DEFAULTS = { automountServiceAccountToken: false, enableServiceLinks: false, terminationGracePeriodSeconds: 30 } as const

export interface ServerContainerOptions {
  readonly role: 'mirror' | 'redirector'
  readonly image: string
  readonly port: number
  readonly scheme: 'HTTP' | 'HTTPS'
  readonly configDir: string
  readonly dataDir: string
  readonly memoryMiB: number
  readonly cpuMillis: number
  /** Mounted between the config and /tmp (the role's Secrets). */
  readonly mounts?: NonNullable<IContainer['volumeMounts']>
}

/**
 * The container of a central server: `flotilla serve --config`, its role, listen address and data dir from the
 * environment, non-root, probed on the registry port; volumes `data`, `config` and `tmp` are the pod's to declare.
 */
export function serverContainer (o: ServerContainerOptions): IContainer {
  return {
    name: o.role,
    image: o.image,
    imagePullPolicy: 'IfNotPresent',
    args: ['serve', '--config', `${o.configDir}/config.yaml`],
    env: [
      { name: 'FLOTILLA_ROLE', value: o.role },
      { name: 'FLOTILLA_LISTEN', value: `0.0.0.0:${o.port}` },
      { name: 'FLOTILLA_DATA_DIR', value: o.dataDir },
      heapEnv(o.memoryMiB),
    ],
    ports: [{ name: 'registry', containerPort: o.port, protocol: 'TCP' }],
    ...probes('registry', o.scheme),
    securityContext: securityContext({ asRoot: false }),
    resources: resources(o.memoryMiB, o.cpuMillis),
    volumeMounts: [
      { name: 'data', mountPath: o.dataDir },
      { name: 'config', mountPath: o.configDir, readOnly: true },
      ...(o.mounts ?? []),
      { name: 'tmp', mountPath: '/tmp' },
    ],
  }
}
