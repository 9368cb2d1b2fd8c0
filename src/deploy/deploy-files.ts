import { DEFAULT_IMAGE } from './default-image.js'
import { DEFAULT_NAMESPACE, MANIFEST_ROLES } from './manifest.js'
import { renderAgentRestoreManifests, renderManifests } from './render-manifests.js'

/** One file under deploy/, its path relative to the repository. */
export interface DeployFile {
  readonly path: string
  readonly content: string
}

const GENERATED = '# Generated from src/deploy/ by `node --import tsx scripts/render-deploy.ts --write`: edit those, not this file.\n'

function kustomization (resource: string): string {
  return `${GENERATED}apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - ${resource}\n`
}

/**
 * deploy/ as it must be: each role's default manifests and a kustomization (`kubectl apply -k deploy/<role>`),
 * and the agent's uninstall step in deploy/agent/uninstall. A test fails when the checked-in files differ.
 */
export function renderDeployFiles (): DeployFile[] {
  const options = { namespace: DEFAULT_NAMESPACE, image: DEFAULT_IMAGE }
  const files: DeployFile[] = []
  for (const role of MANIFEST_ROLES) {
    files.push({ path: `deploy/${role}/${role}.yaml`, content: GENERATED + renderManifests(role, options) })
    files.push({ path: `deploy/${role}/kustomization.yaml`, content: kustomization(`${role}.yaml`) })
  }
  files.push({ path: 'deploy/agent/uninstall/agent-restore.yaml', content: GENERATED + renderAgentRestoreManifests(options) })
  files.push({ path: 'deploy/agent/uninstall/kustomization.yaml', content: kustomization('agent-restore.yaml') })
  return files
}
