import { execFileSync } from 'node:child_process'
import { onExit } from './on-exit.js'
import { runCommandChecked } from './run-command.js'
import { makeTempDir } from './temp-dir.js'

export interface TmpfsMount {
  readonly path: string
  /** Unmounts and removes the directory; idempotent. */
  cleanup(): Promise<void>
}

/** Whether this process may mount (root): tests that need a small filesystem skip otherwise. */
export function canMount (): boolean {
  return process.getuid?.() === 0
}

/**
 * A tmpfs of `size` (mount's syntax: `8m`, `256k`) on a fresh temp dir: a disk that fills up for real.
 * Unmounted by `cleanup()`, or at process exit if the test never got that far.
 */
export async function mountTmpfs (prefix: string, size: string): Promise<TmpfsMount> {
  const dir = await makeTempDir(prefix)
  try {
    await runCommandChecked('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir.path], { timeoutMs: 10_000 })
  } catch (err) {
    await dir.cleanup()
    throw err
  }
  // Registered after the temp dir's own exit hook, so it runs first (newest first): unmount, then remove.
  const unregister = onExit(() => { execFileSync('umount', ['-l', dir.path]) })
  let cleaned: Promise<void> | undefined
  return {
    path: dir.path,
    cleanup () {
      cleaned ??= (async () => {
        // Lazily if still busy (a file a failed test left open): detached now, freed when the file closes.
        await runCommandChecked('umount', ['-l', dir.path], { timeoutMs: 10_000 })
        unregister()
        await dir.cleanup()
      })()
      return cleaned
    },
  }
}
