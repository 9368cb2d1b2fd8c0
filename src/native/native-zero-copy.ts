import { ServerResponse } from 'node:http'
import { createRequire } from 'node:module'
import { Socket } from 'node:net'
import { constants } from 'node:os'
import type { Writable } from 'node:stream'
import { TLSSocket } from 'node:tls'
import { getSystemErrorName } from 'node:util'
import { prematureClose, type ZeroCopy } from '../http/sendable.js'

/** The addon's interface (native/send-file.c). */
interface SendFileAddon {
  sendFile (socketFd: number, fileFd: number, offset: number, length: number, done: (errno: number, sent: number) => void): object
  cancel (job: object): void
}

/** Built by `npm ci` (scripts/build-native.ts); the same path from src/native and dist/native. */
const ADDON = '../../native/build/Release/flotilla_native.node'
const { ECANCELED } = constants.errno
const EMPTY = Buffer.alloc(0)

/**
 * The zero-copy sender of the native addon, or why there is none (not built, not Linux): callers then use
 * the JavaScript path.
 */
export function loadZeroCopy (path = ADDON): ZeroCopy | Error {
  let addon: SendFileAddon
  try {
    addon = createRequire(import.meta.url)(path) as SendFileAddon
  } catch (err) {
    return err instanceof Error ? err : new Error(String(err))
  }
  if (typeof addon.sendFile !== 'function' || typeof addon.cancel !== 'function') return new Error(`${path} is not flotilla's addon`)
  return new NativeZeroCopy(addon)
}

/** `sendfile(2)` on a thread of the addon's, for plain TCP sockets; TLS and other destinations are declined. */
class NativeZeroCopy implements ZeroCopy {
  readonly #addon: SendFileAddon

  constructor (addon: SendFileAddon) {
    this.#addon = addon
  }

  send (dest: Writable, fd: number, position: number, length: number, signal?: AbortSignal): Promise<number> | undefined {
    const socket = dest instanceof ServerResponse ? dest.socket : dest
    if (!(socket instanceof Socket) || socket instanceof TLSSocket) return undefined
    // Raw bytes on the socket are the body only under a head already written without chunked framing (a
    // declared length): chunks are JavaScript's to frame.
    if (dest instanceof ServerResponse && (!dest.headersSent || dest.chunkedEncoding)) return undefined
    const socketFd = (socket as Socket & { _handle?: { fd?: unknown } })._handle?.fd
    if (typeof socketFd !== 'number' || socketFd < 0) return undefined
    return this.#send(dest, socket, socketFd, fd, position, length, signal)
  }

  async #send (dest: Writable, socket: Socket, socketFd: number, fd: number, position: number, length: number, signal: AbortSignal | undefined): Promise<number> {
    // The headers (and anything else written before) must be on the wire before the file's bytes. `headersSent`
    // is true from writeHead on, before they are written; flushHeaders writes them, or nothing if they were.
    if (dest instanceof ServerResponse) dest.flushHeaders()
    await new Promise<void>((resolve, reject) => {
      socket.write(EMPTY, (err) => { if (err == null) resolve(); else reject(err) })
    })
    assertOpen(dest, socket, signal)
    const sent = await new Promise<number>((resolve, reject) => {
      const done = (errno: number, n: number): void => {
        socket.off('close', stop)
        signal?.removeEventListener('abort', stop)
        if (errno === 0) resolve(n)
        else if (errno === -1) reject(new Error(`file ended at byte ${position + n}, before the range's end ${position + length}`))
        else if (errno === ECANCELED) reject(signal?.aborted === true ? signal.reason : prematureClose())
        else reject(Object.assign(new Error(`sendfile: ${getSystemErrorName(-errno)}`), { code: getSystemErrorName(-errno), errno: -errno, syscall: 'sendfile' }))
      }
      const job = this.#addon.sendFile(socketFd, fd, position, length, done)
      const stop = (): void => { this.#addon.cancel(job) }
      socket.once('close', stop)
      signal?.addEventListener('abort', stop, { once: true })
    })
    return sent
  }
}

function assertOpen (dest: Writable, socket: Socket, signal: AbortSignal | undefined): void {
  if (signal?.aborted === true) throw signal.reason
  if (dest.destroyed || dest.writableEnded || socket.destroyed) throw dest.errored ?? socket.errored ?? prematureClose()
}

