import type { Logger } from 'pino'
import { KubeError } from '../kube/kube-error.js'
import { isLabelValue } from '../kube/labels.js'
import { inClusterNodeOptions, readNodeLabels, type NodeApiOptions } from '../kube/node-labels.js'
import { describeError, oneLine } from '../errors/one-line.js'
import { P2pError } from './errors.js'

export const ZONE_LABEL = 'topology.kubernetes.io/zone'
/** Still set by older clusters and some cloud providers; read when the current label is absent. */
export const DEPRECATED_ZONE_LABEL = 'failure-domain.beta.kubernetes.io/zone'

export type NodeZoneOptions = NodeApiOptions

/** Where this agent would read its node's zone from: see inClusterNodeOptions. */
export const inClusterNodeZoneOptions = inClusterNodeOptions

/**
 * Reads the zone of a node from its `topology.kubernetes.io/zone` label (or the deprecated
 * `failure-domain.beta.kubernetes.io/zone`) with the pod's service account; undefined when the node has
 * neither. Failures are a P2pError with a one-line message (ERR_NODE_ZONE, or ERR_NODE_ZONE_INVALID for
 * a bad node name or zone value); an abort by `signal` throws its reason.
 */
export async function readNodeZone (options: NodeZoneOptions): Promise<string | undefined> {
  let labels: Record<string, string>
  try {
    labels = await readNodeLabels(options)
  } catch (err) {
    if (!(err instanceof KubeError)) throw err
    throw new P2pError(err.code === 'ERR_KUBE_INVALID' ? 'ERR_NODE_ZONE_INVALID' : 'ERR_NODE_ZONE', err.message, { cause: err })
  }
  for (const label of [ZONE_LABEL, DEPRECATED_ZONE_LABEL]) {
    const value = labels[label]
    // An empty value is a valid label value but names no zone.
    if (value === undefined || value === '') continue
    if (!isLabelValue(value)) {
      throw new P2pError('ERR_NODE_ZONE_INVALID', `label ${label} of node ${options.nodeName} is not a valid label value: ${oneLine(JSON.stringify(value))}`)
    }
    return value
  }
  return undefined
}

/**
 * The zone this agent learns from its node when none was configured: undefined outside a cluster, on a
 * node without a zone label, or when the lookup fails (logged as a warning; the agent runs without a zone).
 */
export async function zoneFromNodeLabel (env: NodeJS.ProcessEnv, logger: Logger, options: Partial<NodeZoneOptions> = {}): Promise<string | undefined> {
  const inCluster = inClusterNodeOptions(env)
  if (inCluster === undefined) return undefined
  const node = inCluster.nodeName
  try {
    const zone = await readNodeZone({ ...inCluster, ...options })
    if (zone === undefined) logger.info({ node }, 'the node has no zone label; p2p runs without a zone')
    else logger.info({ zone, node }, 'p2p zone from the node label')
    return zone
  } catch (err) {
    const code = err instanceof P2pError ? err.code : undefined
    logger.warn({ node, code }, `p2p zone not read from the node label, going on without a zone: ${err instanceof P2pError ? err.message : describeError(err)}`)
    return undefined
  }
}
