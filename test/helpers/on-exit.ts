/**
 * Synchronous last-chance cleanup when the test process goes away (normal exit, SIGINT, SIGTERM,
 * SIGHUP). Helpers register "kill this child" / "remove this dir" here so a crashed or interrupted
 * test run does not leak registries, containerd daemons or temp dirs. Callbacks must be synchronous:
 * nothing asynchronous runs once 'exit' fires.
 */
type ExitCallback = () => void

const callbacks = new Set<ExitCallback>()
let isInstalled = false

function runAll (): void {
  // Newest first: children are stopped before the dirs they write into are removed.
  for (const fn of [...callbacks].reverse()) {
    callbacks.delete(fn)
    try {
      fn()
    } catch {
      // Best effort: one failing cleanup must not prevent the others.
    }
  }
}

function onSignal (signal: NodeJS.Signals): void {
  runAll()
  process.removeListener(signal, onSignal)
  // Re-raise so the process still dies with the signal's default disposition.
  process.kill(process.pid, signal)
}

function install (): void {
  if (isInstalled) return
  isInstalled = true
  process.on('exit', runAll)
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.once(signal, onSignal)
}

/** Registers `fn` to run synchronously at process exit; returns a function that unregisters it. */
export function onExit (fn: ExitCallback): () => void {
  install()
  callbacks.add(fn)
  return () => { callbacks.delete(fn) }
}
