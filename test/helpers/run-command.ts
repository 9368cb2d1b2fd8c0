import { spawn } from 'node:child_process'
import { onExit } from './on-exit.js'

export interface RunCommandOptions {
  /** Hard bound: SIGTERM at the deadline, SIGKILL 2 s later. */
  timeoutMs: number
  env?: NodeJS.ProcessEnv
  cwd?: string
  input?: string | Buffer
}

export interface CommandResult {
  /** Exit code, or null when the process died from a signal. */
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
  /** Raw stdout, for byte-exact outputs such as a raw manifest. */
  stdoutBytes: Buffer
  isTimedOut: boolean
  durationMs: number
}

export class CommandError extends Error {
  readonly code = 'ERR_COMMAND_FAILED'
  constructor (readonly command: string, readonly result: CommandResult) {
    const why = result.isTimedOut
      ? `timed out after ${result.durationMs} ms`
      : result.code === null ? `killed by ${result.signal ?? 'signal'}` : `exited with ${result.code}`
    super(`${command} ${why}\n--- stderr ---\n${tail(result.stderr)}\n--- stdout ---\n${tail(result.stdout)}`)
    this.name = 'CommandError'
  }
}

function tail (text: string, max = 4000): string {
  return text.length <= max ? text : `…${text.slice(-max)}`
}

/** Formats a command line for error messages. */
export function formatCommand (cmd: string, args: readonly string[]): string {
  return [cmd, ...args].map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : JSON.stringify(a))).join(' ')
}

/** Runs a short-lived command to completion with a hard time bound; never rejects on a non-zero exit. */
export async function runCommand (cmd: string, args: readonly string[], options: RunCommandOptions): Promise<CommandResult> {
  const started = Date.now()
  const child = spawn(cmd, args, {
    cwd: options.cwd,
    env: options.env ?? process.env,
    stdio: ['pipe', 'pipe', 'pipe'],
  })
  const unregister = onExit(() => { child.kill('SIGKILL') })
  const out: Buffer[] = []
  const err: Buffer[] = []
  child.stdout.on('data', (chunk: Buffer) => out.push(chunk))
  child.stderr.on('data', (chunk: Buffer) => err.push(chunk))
  child.stdin.on('error', () => { /* the command need not read its input */ })
  child.stdin.end(options.input)

  let isTimedOut = false
  let killTimer: NodeJS.Timeout | undefined
  const timer = setTimeout(() => {
    isTimedOut = true
    child.kill('SIGTERM')
    killTimer = setTimeout(() => child.kill('SIGKILL'), 2000)
  }, options.timeoutMs)

  try {
    const { code, signal } = await new Promise<{ code: number | null, signal: NodeJS.Signals | null }>((resolve, reject) => {
      child.once('error', reject)
      child.once('close', (code, signal) => resolve({ code, signal }))
    })
    const stdoutBytes = Buffer.concat(out)
    return {
      code,
      signal,
      stdout: stdoutBytes.toString('utf8'),
      stderr: Buffer.concat(err).toString('utf8'),
      stdoutBytes,
      isTimedOut,
      durationMs: Date.now() - started,
    }
  } finally {
    clearTimeout(timer)
    clearTimeout(killTimer)
    unregister()
  }
}

/** Like runCommand, but throws a CommandError (with stderr in the message) unless the exit code is 0. */
export async function runCommandChecked (cmd: string, args: readonly string[], options: RunCommandOptions): Promise<CommandResult> {
  const result = await runCommand(cmd, args, options)
  if (result.code !== 0 || result.isTimedOut) throw new CommandError(formatCommand(cmd, args), result)
  return result
}
