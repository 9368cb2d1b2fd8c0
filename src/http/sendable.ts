import type { Readable, Writable } from 'node:stream'

/**
 * A body that can write itself to a destination faster than a pipe: no per-chunk allocation or copy, and
 * `onSent` hears each chunk's length once the destination took it. It ends the destination and settles when
 * the destination finished; it rejects when the destination closed early or the body failed.
 */
export interface Sendable {
  sendTo (dest: Writable, onSent?: (bytes: number) => void): Promise<void>
}

export function isSendable (body: Readable): body is Readable & Sendable {
  return typeof (body as Partial<Sendable>).sendTo === 'function'
}
