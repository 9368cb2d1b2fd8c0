import { createHash } from 'node:crypto'
import type { IConfigMap } from 'kubernetes-models/v1/ConfigMap'

export type ObjectMeta = NonNullable<IConfigMap['metadata']>

/** The three roles flotilla deploys as. */
export const MANIFEST_ROLES = ['agent', 'mirror', 'redirector'] as const
export type ManifestRole = (typeof MANIFEST_ROLES)[number]

export interface DeployOptions {
  /** Namespace of every namespaced object (it is not created by the manifests). */
  readonly namespace: string
  /** Image of every flotilla container. */
  readonly image: string
  /** The role's configuration file (`flotilla serve --config`), embedded in its ConfigMap; default: the role's own. */
  readonly configYaml?: string
}

/** Any Kubernetes object: the builders type theirs with kubernetes-models' interfaces. */
export interface KubeObject {
  readonly apiVersion: string
  readonly kind: string
  readonly metadata?: ObjectMeta
}

/** One document of the output: the object and a comment saying why it is as it is. */
export interface Manifest {
  readonly object: KubeObject
  readonly comment?: string
}

/** A Secret the manifests mount but do not hold (its content is the operator's), and how to create it. */
export interface RequiredSecret {
  readonly name: string
  readonly create: readonly string[]
}

/** A role's objects, and the Secrets that must exist before its pods start. */
export interface RoleManifests {
  readonly manifests: readonly Manifest[]
  readonly requiredSecrets: readonly RequiredSecret[]
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/

/** Validates the options once, as every builder is given them; a bad one is a TypeError naming it. */
export function validateDeployOptions (options: DeployOptions): DeployOptions {
  if (!DNS_LABEL.test(options.namespace)) {
    throw new TypeError(`namespace ${JSON.stringify(options.namespace)}: expected a DNS label (a-z, 0-9 and -, at most 63 characters)`)
  }
  if (options.image === '' || /\s/.test(options.image)) throw new TypeError(`image ${JSON.stringify(options.image)}: expected an image reference`)
  return options
}

/** The labels selecting one component's pods: never the version, so that an upgrade keeps its selector. */
export function selectorLabels (component: string): Record<string, string> {
  return { 'app.kubernetes.io/name': 'flotilla', 'app.kubernetes.io/component': component }
}

/** Name, namespace (for namespaced objects) and the component's labels. */
export function metadata (name: string, component: string, namespace?: string): ObjectMeta {
  return {
    name,
    ...(namespace === undefined ? {} : { namespace }),
    labels: { ...selectorLabels(component), 'app.kubernetes.io/part-of': 'flotilla', 'app.kubernetes.io/managed-by': 'flotilla-manifests' },
  }
}

/** A pod template annotation that changes with the configuration, so that applying a new one rolls the pods. */
export function configAnnotation (configYaml: string): Record<string, string> {
  return { 'flotilla.io/config-sha256': createHash('sha256').update(configYaml).digest('hex') }
}

/** Where `flotilla manifests` and deploy/ put everything unless told otherwise. */
export const DEFAULT_NAMESPACE = 'flotilla'
