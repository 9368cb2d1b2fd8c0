import { spawn } from 'node:child_process'
import { Duplex, finished } from 'node:stream'
import { BundleError } from './bundle-error.js'

/** A `zstd` child process as a stream, and its exit: Node 20 has no zstd of its own. */
export interface ZstdProcess {
  readonly stream: Duplex
  /** Resolves when zstd exited 0; rejects with a BundleError otherwise. Await it after the pipeline. */
  readonly done: Promise<void>
}

const ZSTD_BIN = 'zstd'
const STDERR_LIMIT = 2048

/**
 * Spawns `zstd -q -T0 -c` (compress) or `zstd -q -d -c` (decompress). `file` only names the bundle in errors. A
 * stream destroyed early (the pipeline failed elsewhere) kills the process.
 */
export function spawnZstd (mode: 'compress' | 'decompress', file: string, signal?: AbortSignal): ZstdProcess {
  const args = mode === 'compress' ? ['-q', '-T0', '-c'] : ['-q', '-d', '-c']
  const child = spawn(ZSTD_BIN, args, { stdio: ['pipe', 'pipe', 'pipe'], ...(signal === undefined ? {} : { signal }) })
  let stderr = ''
  child.stderr.setEncoding('utf8')
  child.stderr.on('data', (s: string) => { if (stderr.length < STDERR_LIMIT) stderr += s })
  const stream = Duplex.from({ writable: child.stdin, readable: child.stdout })
  finished(stream, (err) => { if (err !== undefined && err !== null && child.exitCode === null) child.kill('SIGKILL') })
  const done = new Promise<void>((resolve, reject) => {
    const fail = (e: BundleError): void => {
      stream.destroy(e)
      reject(e)
    }
    child.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') fail(new BundleError('ERR_BUNDLE_IO', `${file}: the zstd program is not installed (needed for .tar.zst; install the zstd package)`, { cause: err }))
      else fail(new BundleError('ERR_BUNDLE_IO', `${file}: zstd failed: ${err.message}`, { cause: err }))
    })
    child.once('close', (code, sig) => {
      if (code === 0) {
        resolve()
        return
      }
      const why = (stderr.trim().split('\n').pop() ?? '') || (sig === null ? `exit code ${code ?? '?'}` : `killed by ${sig}`)
      fail(mode === 'decompress'
        ? new BundleError('ERR_BUNDLE_INVALID', `${file}: not a valid zstd stream (${why})`)
        : new BundleError('ERR_BUNDLE_IO', `${file}: zstd failed (${why})`))
    })
  })
  done.catch(() => { /* the caller awaits it; this only keeps an early failure from being unhandled */ })
  return { stream, done }
}
