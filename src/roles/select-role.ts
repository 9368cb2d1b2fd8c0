import type { Config } from '../config/config-schema.js'
import { startAgent } from './agent-role.js'
import { startMirror } from './mirror-role.js'
import { startRedirector } from './redirector-role.js'
import type { Role } from './role.js'
import { startStandalone } from './standalone-role.js'

/** Every role, by name: a new role is its file in roles/ and an entry here. */
export const ROLES = {
  standalone: startStandalone,
  agent: startAgent,
  mirror: startMirror,
  redirector: startRedirector,
} as const satisfies Readonly<Record<string, Role>>

export type RoleName = keyof typeof ROLES

/**
 * The role a configuration asks for, decided here alone: `role` when set; else using the node (its
 * containerd, its peers) makes an agent, and with neither flotilla is the single-node mirror.
 */
export function selectRole (config: Config): RoleName {
  if (config.role !== undefined) return config.role
  return config.p2p.listen !== undefined || config.containerd.socket !== undefined ? 'agent' : 'standalone'
}
