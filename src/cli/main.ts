#!/usr/bin/env node
// libp2p needs Promise.withResolvers, which Node 20 lacks: load the polyfill before anything else.
import '../p2p/polyfill.js'
import { Command, CommanderError } from 'commander'
import { hasCode } from '../errors/flotilla-error.js'
import { registerClusterKey } from './cluster-key-command.js'
import { registerContainerd } from './containerd-command.js'
import { registerImages } from './images-command.js'
import { registerLoad } from './load-command.js'
import { registerManifests } from './manifests-command.js'
import { registerPrecache } from './precache-command.js'
import { registerRedirect } from './redirect-command.js'
import { registerSave } from './save-command.js'
import { registerServe } from './serve-command.js'
import { registerStatus } from './status-command.js'

/** Every failure ends as one line on stderr and a non-zero exit; never a stack trace for user errors. */
function fail (err: unknown): never {
  process.stderr.write(`flotilla: ${err instanceof Error ? err.message : String(err)}\n`)
  if (process.env.FLOTILLA_DEBUG === '1') console.error(err)
  process.exit(hasCode(err, 'ERR_DATA_DIR_LOCKED') ? 3 : 1)
}

const program = new Command()
  .name('flotilla')
  .description('Node-local OCI registry mirror: pull-through, peer-to-peer, offline')
  .version('0.1.0')
  .exitOverride()
  .showHelpAfterError()
registerServe(program)
registerContainerd(program)
registerClusterKey(program)
registerPrecache(program)
registerImages(program)
registerSave(program)
registerLoad(program)
registerRedirect(program)
registerStatus(program)
registerManifests(program)

try {
  await program.parseAsync(process.argv)
} catch (err) {
  if (err instanceof CommanderError) process.exit(err.exitCode)
  fail(err)
}
