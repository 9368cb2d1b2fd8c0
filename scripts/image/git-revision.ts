import { execFile as execFileCb } from 'node:child_process'
import { promisify } from 'node:util'
import { ROOT } from './constants.js'

const execFile = promisify(execFileCb)

/** The checkout's commit, for the `org.opencontainers.image.revision` label. */
export async function gitRevision (): Promise<string | undefined> {
  try {
    const { stdout } = await execFile('git', ['rev-parse', 'HEAD'], { cwd: ROOT })
    return stdout.trim()
  } catch {
    return undefined // not a git checkout (an unpacked npm package): no revision label
  }
}
