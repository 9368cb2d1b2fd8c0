import { mkdtemp, rm } from 'node:fs/promises'
import { rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { onExit } from './on-exit.js'

export interface TempDir {
  readonly path: string
  /** Removes the directory tree; idempotent. */
  cleanup(): Promise<void>
}

/**
 * Creates a fresh directory under the OS temp dir named `flotilla-<prefix>-XXXXXX`. It is removed by
 * `cleanup()`, or at process exit if the test never got that far.
 */
export async function makeTempDir (prefix: string): Promise<TempDir> {
  if (!/^[\w.-]+$/.test(prefix)) throw new TypeError(`makeTempDir: prefix must be [A-Za-z0-9_.-]+, got ${JSON.stringify(prefix)}`)
  const path = await mkdtemp(join(tmpdir(), `flotilla-${prefix}-`))
  const unregister = onExit(() => { rmSync(path, { recursive: true, force: true }) })
  let cleaned: Promise<void> | undefined
  return {
    path,
    cleanup () {
      cleaned ??= (async () => {
        unregister()
        await rm(path, { recursive: true, force: true, maxRetries: 3 })
      })()
      return cleaned
    },
  }
}
