import type { Logger } from 'pino'
import type { Config } from './config/config-schema.js'
import type { Daemon } from './roles/role.js'
import { ROLES, selectRole } from './roles/select-role.js'

export type { Daemon } from './roles/role.js'

/**
 * Starts flotilla in the role the configuration selects (see roles/select-role.ts). `env` is the process
 * environment, read only for what the configuration cannot know (the Kubernetes node the agent runs on).
 */
export async function startDaemon (config: Config, logger: Logger, env: NodeJS.ProcessEnv = process.env): Promise<Daemon> {
  return await ROLES[selectRole(config)](config, logger, env)
}
