import { spawn } from 'node:child_process'
import { createWriteStream, type WriteStream } from 'node:fs'
import { onExit } from './on-exit.js'
import { waitFor } from './wait-for.js'
import { formatCommand } from './run-command.js'

export interface StartProcessOptions {
  env?: NodeJS.ProcessEnv
  cwd?: string
  /** Also append everything the process prints to this file. */
  logFile?: string
  /** Polled until true; startProcess resolves only then. Omit for "started is ready". */
  readyCheck?: () => Promise<boolean> | boolean
  /** Bound on readiness; default 15 s. */
  readyTimeoutMs?: number
  /** Poll interval for readyCheck; default 50 ms. */
  readyIntervalMs?: number
  /** Label for error messages; default the command's basename. */
  name?: string
  /** Bytes of combined stdout/stderr kept for error messages; default 16 KiB. */
  tailBytes?: number
}

export interface ProcessExit {
  code: number | null
  signal: NodeJS.Signals | null
}

export interface ProcessHandle {
  readonly pid: number
  readonly name: string
  /** Settles when the process has exited (never rejects). */
  readonly exited: Promise<ProcessExit>
  readonly isRunning: boolean
  /** Sends `signal`, then SIGKILL if the process is still there after `timeoutMs` (default 10 s). */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<ProcessExit>
  /** SIGKILL, for crash tests. */
  kill9(): Promise<ProcessExit>
  /** The last bytes of combined stdout and stderr. */
  output(): string
}

export class ProcessStartError extends Error {
  readonly code = 'ERR_PROCESS_START'
  constructor (message: string, readonly output: string, options?: ErrorOptions) {
    super(`${message}\n--- last output ---\n${output}`, options)
    this.name = 'ProcessStartError'
  }
}

/** Keeps the last `max` bytes written to it. */
class OutputTail {
  private chunks: Buffer[] = []
  private size = 0
  constructor (private readonly max: number) {}
  push (chunk: Buffer): void {
    this.chunks.push(chunk)
    this.size += chunk.length
    while (this.size - (this.chunks[0]?.length ?? 0) >= this.max && this.chunks.length > 1) {
      this.size -= this.chunks.shift()?.length ?? 0
    }
  }

  toString (): string {
    const all = Buffer.concat(this.chunks)
    return all.subarray(Math.max(0, all.length - this.max)).toString('utf8')
  }
}

/**
 * Spawns a long-running process (a registry, containerd, flotilla itself), waits until `readyCheck`
 * passes, and fails fast with the process's last output if it exits or times out first. The child is
 * SIGKILLed at test-process exit if nobody stopped it.
 */
export async function startProcess (cmd: string, args: readonly string[], options: StartProcessOptions = {}): Promise<ProcessHandle> {
  const name = options.name ?? cmd.split('/').pop() ?? cmd
  const outputTail = new OutputTail(options.tailBytes ?? 16 * 1024)
  let log: WriteStream | undefined
  if (options.logFile !== undefined) log = createWriteStream(options.logFile, { flags: 'a' })

  const child = spawn(cmd, args, { cwd: options.cwd, env: options.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] })
  const onData = (chunk: Buffer): void => {
    outputTail.push(chunk)
    log?.write(chunk)
  }
  child.stdout.on('data', onData)
  child.stderr.on('data', onData)

  let isRunning = true
  const unregister = onExit(() => { if (isRunning) child.kill('SIGKILL') })
  const exited = new Promise<ProcessExit>((resolve) => {
    let spawnError: Error | undefined
    child.once('error', (err) => {
      spawnError = err
      outputTail.push(Buffer.from(`\n[spawn error] ${err.message}\n`))
      // 'close' may not follow a spawn failure.
      if (child.pid === undefined) finish(null, null)
    })
    const finish = (code: number | null, signal: NodeJS.Signals | null): void => {
      if (!isRunning) return
      isRunning = false
      unregister()
      const done = (): void => resolve({ code: code ?? (spawnError ? -1 : null), signal })
      if (log) log.end(done)
      else done()
    }
    child.once('close', finish)
  })

  const stop = async (signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 10_000): Promise<ProcessExit> => {
    if (!isRunning) return await exited
    child.kill(signal)
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    try {
      return await exited
    } finally {
      clearTimeout(timer)
    }
  }

  const handle: ProcessHandle = {
    get pid () { return child.pid ?? -1 },
    name,
    exited,
    get isRunning () { return isRunning },
    stop,
    kill9: async () => await stop('SIGKILL', 0),
    output: () => outputTail.toString(),
  }

  const readyCheck = options.readyCheck
  if (readyCheck === undefined) {
    if (child.pid === undefined) {
      await exited
      throw new ProcessStartError(`${name}: failed to spawn ${formatCommand(cmd, args)}`, handle.output())
    }
    return handle
  }

  const ready = waitFor(async () => {
    if (!isRunning) return true
    return await readyCheck()
  }, {
    timeoutMs: options.readyTimeoutMs ?? 15_000,
    intervalMs: options.readyIntervalMs ?? 50,
    what: `${name} to become ready`,
  })
  try {
    await ready
  } catch (err) {
    await stop('SIGKILL', 0)
    throw new ProcessStartError(`${name}: not ready (${formatCommand(cmd, args)}): ${(err as Error).message}`, handle.output(), { cause: err })
  }
  if (!isRunning) {
    const e = await exited
    throw new ProcessStartError(
      `${name}: exited before becoming ready (code ${String(e.code)}, signal ${String(e.signal)}): ${formatCommand(cmd, args)}`,
      handle.output(),
    )
  }
  return handle
}
