import { Document } from 'yaml'
import { buildAgentManifests } from './agent-manifests.js'
import { buildAgentRestoreManifests } from './agent-restore-manifests.js'
import type { DeployOptions, ManifestRole, RoleManifests } from './manifest.js'
import { buildMirrorManifests } from './mirror-manifests.js'
import { buildRedirectorManifests } from './redirector-manifests.js'

const BUILDERS = {
  agent: buildAgentManifests,
  mirror: buildMirrorManifests,
  redirector: buildRedirectorManifests,
} as const satisfies Readonly<Record<ManifestRole, (options: DeployOptions) => RoleManifests>>

/** A role's objects as plain objects, in the order they are applied. */
export function buildManifests (role: ManifestRole, options: DeployOptions): RoleManifests {
  return BUILDERS[role](options)
}

/** A role's manifests as one multi-document YAML stream, `kubectl apply -f -` ready. */
export function renderManifests (role: ManifestRole, options: DeployOptions): string {
  return renderYaml(`flotilla ${role} (namespace ${options.namespace}, image ${options.image})`, buildManifests(role, options), options.namespace)
}

/** The agent's uninstall step (flotilla containerd restore on every node) as YAML. */
export function renderAgentRestoreManifests (options: DeployOptions): string {
  return renderYaml(`flotilla agent uninstall step (namespace ${options.namespace}, image ${options.image})`, buildAgentRestoreManifests(options), options.namespace)
}

function renderYaml (title: string, set: RoleManifests, namespace: string): string {
  const header = [title, `The namespace must exist: kubectl create namespace ${namespace}`]
  for (const secret of set.requiredSecrets) {
    header.push(`Secret ${secret.name} must exist:`, ...secret.create.map((line) => `  ${line.replaceAll('NAMESPACE', namespace)}`))
  }
  return set.manifests.map((m, i) => {
    // No anchors: shared label objects are written out in full, as kubectl users read them.
    const doc = new Document(m.object, { aliasDuplicateObjects: false })
    const lines = [...(i === 0 ? [...header, ''] : []), ...(m.comment === undefined ? [] : m.comment.split('\n'))]
    if (lines.length > 0 && doc.contents !== null) doc.contents.commentBefore = lines.map((line) => line === '' ? '' : ` ${line}`).join('\n')
    return doc.toString({ lineWidth: 0 })
  }).join('---\n')
}
