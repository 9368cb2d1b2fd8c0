import { parse } from 'yaml'
import { formatImageReference, parseImageReference } from '../oci/index.js'

/**
 * The images a set of Kubernetes objects runs, as containerd names them: pure, no I/O. Only the workload
 * kinds below are read (by `kind`, whatever the apiVersion); a ConfigMap, Secret or custom resource whose
 * fields merely look like an image is not.
 */

export interface DiscoveredImages {
  /** Fully qualified references (`docker.io/library/busybox:1.36`), each once, in first-seen order. */
  readonly images: string[]
  /** One line per value skipped, naming the object (`Deployment/web`) and the value. */
  readonly warnings: string[]
}

/** Where each workload kind keeps its pod spec. */
const POD_SPEC_PATHS: Readonly<Record<string, readonly string[]>> = {
  Pod: ['spec'],
  PodTemplate: ['template', 'spec'],
  Deployment: ['spec', 'template', 'spec'],
  StatefulSet: ['spec', 'template', 'spec'],
  DaemonSet: ['spec', 'template', 'spec'],
  ReplicaSet: ['spec', 'template', 'spec'],
  ReplicationController: ['spec', 'template', 'spec'],
  Job: ['spec', 'template', 'spec'],
  CronJob: ['spec', 'jobTemplate', 'spec', 'template', 'spec'],
}

const CONTAINER_LISTS = ['initContainers', 'containers', 'ephemeralContainers'] as const

/**
 * HIP-0015's chart annotation, and Artifact Hub's of the same form: a YAML string holding a list of
 * `{ name, image }` (other fields such as `whitelisted`, `platforms`, `condition` are ignored).
 */
const IMAGE_ANNOTATIONS = ['helm.sh/images', 'artifacthub.io/images'] as const

type Obj = Record<string, unknown>

function isObject (value: unknown): value is Obj {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function dig (value: unknown, path: readonly string[]): unknown {
  let at = value
  for (const key of path) {
    if (!isObject(at)) return undefined
    at = at[key]
  }
  return at
}

class Collector {
  readonly images = new Set<string>()
  readonly warnings: string[] = []
  /** Lists already walked: YAML aliases can make a list contain itself. */
  readonly seen = new WeakSet<object>()

  add (image: unknown, where: string): void {
    if (image === undefined || image === null || image === '') return // optional in a workload: defaulted by something else
    if (typeof image !== 'string') {
      this.warnings.push(`${where}: image ${JSON.stringify(image)} is not a string; skipped`)
      return
    }
    try {
      const ref = parseImageReference(image)
      // containerd (reference.ParseDockerRef) drops the tag when a digest is given: the digest names the image.
      const named = ref.digest === undefined ? ref : { registry: ref.registry, repository: ref.repository, digest: ref.digest }
      this.images.add(formatImageReference(named))
    } catch (err) {
      const why = err instanceof Error ? err.message : String(err)
      this.warnings.push(`${where}: image ${JSON.stringify(image)} is not a valid reference (${why}); skipped`)
    }
  }
}

function objectName (kind: string, obj: Obj): string {
  const name = dig(obj, ['metadata', 'name']) ?? (kind === 'Chart' ? obj.name : undefined)
  return `${kind}/${typeof name === 'string' && name !== '' ? name : '(unnamed)'}`
}

/** A Chart.yaml: no kind, `apiVersion: v1|v2`, its annotations at the top level rather than in metadata. */
function isChartFile (obj: Obj): boolean {
  return obj.kind === undefined && (obj.apiVersion === 'v1' || obj.apiVersion === 'v2') && typeof obj.name === 'string'
}

function walkPodSpec (spec: unknown, where: string, out: Collector): void {
  if (!isObject(spec)) return
  for (const list of CONTAINER_LISTS) {
    const containers = spec[list]
    if (!Array.isArray(containers)) continue
    for (const container of containers) {
      if (!isObject(container)) continue
      const name = typeof container.name === 'string' ? container.name : '?'
      out.add(container.image, `${where} ${list}[${name}]`)
    }
  }
}

function walkAnnotation (value: unknown, annotation: string, where: string, out: Collector): void {
  let entries: unknown = value
  if (typeof value === 'string') {
    try {
      entries = parse(value)
    } catch (err) {
      const why = err instanceof Error ? err.message.split('\n')[0] : String(err)
      out.warnings.push(`${where}: annotation ${annotation} is not YAML (${why}); skipped`)
      return
    }
  }
  if (entries === null || entries === undefined) return
  if (!Array.isArray(entries)) {
    out.warnings.push(`${where}: annotation ${annotation} is not a list of { name, image }; skipped`)
    return
  }
  for (const entry of entries) {
    if (!isObject(entry) || typeof entry.image !== 'string') {
      out.warnings.push(`${where}: annotation ${annotation} has an entry without an image (${JSON.stringify(entry)}); skipped`)
      continue
    }
    out.add(entry.image, `${where} ${annotation}`)
  }
}

function walk (doc: unknown, out: Collector, impliedKind?: string): void {
  if (!isObject(doc)) return
  const kind = typeof doc.kind === 'string' ? doc.kind : (impliedKind ?? (isChartFile(doc) ? 'Chart' : undefined))
  if (kind === undefined) return
  const where = objectName(kind, doc)

  const annotations = kind === 'Chart' && doc.kind === undefined ? doc.annotations : dig(doc, ['metadata', 'annotations'])
  if (isObject(annotations)) {
    for (const annotation of IMAGE_ANNOTATIONS) {
      if (annotations[annotation] !== undefined) walkAnnotation(annotations[annotation], annotation, where, out)
    }
  }

  const podSpecPath = POD_SPEC_PATHS[kind]
  if (podSpecPath !== undefined) {
    walkPodSpec(dig(doc, podSpecPath), where, out)
    return
  }
  if (kind.endsWith('List') && Array.isArray(doc.items) && !out.seen.has(doc.items)) {
    out.seen.add(doc.items)
    // A typed list (`DeploymentList`) as the API server answers it: its items carry no kind of their own.
    const itemKind = kind === 'List' ? undefined : kind.slice(0, -'List'.length)
    for (const item of doc.items) walk(item, out, itemKind)
  }
}

/** Walks parsed Kubernetes documents (and Chart.yaml files) for the images their pods and charts name. */
export function discoverImages (documents: unknown[]): DiscoveredImages {
  const out = new Collector()
  for (const doc of documents) walk(doc, out)
  return { images: [...out.images], warnings: out.warnings }
}
