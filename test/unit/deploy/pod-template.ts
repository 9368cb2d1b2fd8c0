// Reading the rendered objects back in the tests: the pod template of a workload, objects by kind.
import type { IContainer } from 'kubernetes-models/v1/Container'
import type { IPodTemplateSpec } from 'kubernetes-models/v1/PodTemplateSpec'
import type { KubeObject, Manifest } from '../../../src/deploy/manifest.js'

export const WORKLOAD_KINDS = new Set(['DaemonSet', 'Deployment', 'StatefulSet'])

export interface Workload extends KubeObject {
  readonly spec: { readonly selector: { readonly matchLabels: Record<string, string> }, readonly template: IPodTemplateSpec }
}

export function objectsOf (manifests: readonly Manifest[], kind: string): KubeObject[] {
  return manifests.map((m) => m.object).filter((o) => o.kind === kind)
}

export function onlyOf<T = KubeObject> (manifests: readonly Manifest[], kind: string): T {
  const found = objectsOf(manifests, kind)
  if (found.length !== 1) throw new Error(`expected one ${kind}, found ${found.length}`)
  return found[0] as T
}

export function workloadsOf (manifests: readonly Manifest[]): Workload[] {
  return manifests.map((m) => m.object).filter((o): o is Workload => WORKLOAD_KINDS.has(o.kind))
}

export function containersOf (w: Workload): { init: IContainer[], main: IContainer[] } {
  const spec = w.spec.template.spec
  return { init: spec?.initContainers ?? [], main: spec?.containers ?? [] }
}

export function envOf (c: IContainer, name: string): string | undefined {
  return c.env?.find((e) => e.name === name)?.value
}

/** Mebibytes of a quantity such as 512Mi or 1Gi. */
export function mebibytes (quantity: unknown): number {
  const m = /^(\d+)(Mi|Gi)$/.exec(String(quantity))
  if (m === null) throw new Error(`unexpected quantity ${String(quantity)}`)
  return Number(m[1]) * (m[2] === 'Gi' ? 1024 : 1)
}
