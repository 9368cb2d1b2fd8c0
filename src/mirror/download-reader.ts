import { Readable, type Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { SendGate, isSendable, type Sendable, type ZeroCopy } from '../http/sendable.js'

/** What a reader of a download takes next. */
export type ReaderStep =
  /** Bytes at the reader's position, in order: slices of what the download holds, never copies. */
  | { readonly kind: 'bytes', readonly parts: readonly Buffer[] }
  /** The rest of the reader's range, from the store (the blob is committed). */
  | { readonly kind: 'stream', readonly rest: Readable }
  | { readonly kind: 'end' }

/**
 * A reader of a download as it arrives. As a Readable it pushes the slices it is given, without gathering them
 * into one buffer; `sendTo` writes them straight to the client (corked, so a batch goes out as one writev), waits
 * for the client to drain rather than buffering, and hands the committed rest to the store's own fast path.
 */
export class DownloadReader extends Readable implements Sendable {
  readonly #next: () => Promise<ReaderStep>
  #isStarted = false
  #demand: (() => void) | undefined

  /** `next` waits for bytes; it must return 'end' soon after this reader is destroyed. */
  constructor (next: () => Promise<ReaderStep>, highWaterMark: number) {
    super({ highWaterMark })
    this.#next = next
  }

  override _read (): void {
    const demand = this.#demand
    this.#demand = undefined
    demand?.()
    if (this.#isStarted) return
    this.#isStarted = true
    this.#pump().catch((err: unknown) => { this.destroy(err as Error) })
  }

  override _destroy (error: Error | null, callback: (error?: Error | null) => void): void {
    this.#demand?.()
    callback(error)
  }

  async #pump (): Promise<void> {
    for (;;) {
      const step = await this.#next()
      if (this.destroyed) return
      if (step.kind === 'end') {
        this.push(null)
        return
      }
      const chunks: AsyncIterable<Buffer> | Iterable<Buffer> = step.kind === 'bytes' ? step.parts : step.rest
      try {
        for await (const chunk of chunks) {
          if (this.destroyed) return
          if (!this.push(chunk)) await new Promise<void>((resolve) => { this.#demand = resolve })
        }
      } finally {
        if (step.kind === 'stream') step.rest.destroy()
      }
      if (step.kind === 'stream') {
        if (!this.destroyed) this.push(null)
        return
      }
    }
  }

  /** The rest of a download that was committed meanwhile comes from the store's file: by `zeroCopy` where it can. */
  async sendTo (dest: Writable, onSent?: (bytes: number) => void, zeroCopy?: ZeroCopy): Promise<void> {
    if (this.#isStarted || this.destroyed) throw new Error('DownloadReader: already being read')
    this.#isStarted = true
    const gate = new SendGate(this, dest, 'DownloadReader')
    try {
      for (;;) {
        await gate.until()
        const step = await this.#next()
        gate.assertOpen()
        if (step.kind === 'end') break
        if (step.kind === 'stream') {
          if (isSendable(step.rest)) await step.rest.sendTo(dest, onSent, zeroCopy)
          else {
            step.rest.on('data', (c: Buffer) => onSent?.(c.byteLength))
            await pipeline(step.rest, dest)
          }
          return
        }
        dest.cork()
        for (const part of step.parts) dest.write(part, (err) => { if (err == null) onSent?.(part.byteLength) })
        dest.uncork()
      }
      await gate.end()
    } finally {
      gate.close()
      this.destroy()
    }
  }
}
