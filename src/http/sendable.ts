import type { Readable, Writable } from 'node:stream'
import { finished } from 'node:stream/promises'

/**
 * A body that can write itself to a destination faster than a pipe: no per-chunk allocation or copy, and
 * `onSent` hears each chunk's length once the destination took it. It ends the destination and settles when
 * the destination finished; it rejects when the destination closed early or the body failed.
 */
export interface Sendable {
  sendTo (dest: Writable, onSent?: (bytes: number) => void, zeroCopy?: ZeroCopy): Promise<void>
}

/**
 * Sends part of an open file to the socket under `dest` without the bytes passing through JavaScript
 * (`sendfile(2)`), and settles with the bytes sent once the last one is; the caller ends `dest`. It flushes
 * what `dest` holds (the response headers) first. It returns `undefined`, having written nothing, when it
 * cannot send to this destination (not a plain TCP socket, or a response without a declared length); it
 * rejects when the destination closed early, `signal` aborted, or the file ended before `length` bytes.
 */
export interface ZeroCopy {
  send (dest: Writable, fd: number, position: number, length: number, signal?: AbortSignal): Promise<number> | undefined
}

/** The error of a destination that closed before the last byte. */
export function prematureClose (): Error {
  return Object.assign(new Error('destination closed before the last byte'), { code: 'ERR_STREAM_PREMATURE_CLOSE' })
}

/** Ends `dest` and waits until it finished (rejecting if it closed early). */
export async function endAndWait (dest: Writable): Promise<void> {
  dest.end()
  await finished(dest)
}

export function isSendable (body: Readable): body is Readable & Sendable {
  return typeof (body as Partial<Sendable>).sendTo === 'function'
}

/**
 * What every `sendTo` loop needs around its writes: waiting until the destination drained (or a write
 * callback, or either side closing, says to look again), and checking that neither side closed under it.
 * `close()` removes its listeners.
 */
export class SendGate {
  readonly #source: Readable
  readonly #dest: Writable
  readonly #name: string
  #wake: (() => void) | undefined
  readonly #wakeUp = (): void => {
    const w = this.#wake
    this.#wake = undefined
    w?.()
  }

  /** `name` says whose send it is in the error when the source is destroyed. */
  constructor (source: Readable, dest: Writable, name: string) {
    this.#source = source
    this.#dest = dest
    this.#name = name
    dest.on('close', this.#wakeUp)
    dest.on('drain', this.#wakeUp)
    source.on('close', this.#wakeUp)
  }

  /** For a write callback: the loop may go on. */
  wakeUp (): void {
    this.#wakeUp()
  }

  /** Waits while `isBlocked()` (and the destination needs to drain), throwing once either side closed. */
  async until (isBlocked: () => boolean = () => false): Promise<void> {
    while (isBlocked() || this.#dest.writableNeedDrain) {
      this.assertOpen()
      await new Promise<void>((resolve) => { this.#wake = resolve })
    }
    this.assertOpen()
  }

  assertOpen (): void {
    if (this.#source.destroyed) throw this.#source.errored ?? new Error(`${this.#name}: destroyed while sending`)
    const dest = this.#dest
    if (dest.destroyed || dest.writableEnded) throw dest.errored ?? prematureClose()
  }

  /** Ends the destination and waits until it finished. */
  async end (): Promise<void> {
    await endAndWait(this.#dest)
  }

  close (): void {
    this.#dest.off('close', this.#wakeUp)
    this.#dest.off('drain', this.#wakeUp)
    this.#source.off('close', this.#wakeUp)
  }
}
