import { Readable } from 'node:stream'
import type * as grpc from '@grpc/grpc-js'
import { ContainerdError, toContainerdError } from './grpc-call.js'

/** Adapts a ReadContent response stream to a byte stream, pausing the call while the consumer is full. */
export class GrpcContentReadable extends Readable {
  #idleTimer: NodeJS.Timeout | undefined
  readonly #onAbort: () => void
  readonly #call: grpc.ClientReadableStream<unknown>
  readonly #idleTimeoutMs: number
  readonly #signal: AbortSignal | undefined

  constructor (call: grpc.ClientReadableStream<unknown>, idleTimeoutMs: number, signal: AbortSignal | undefined) {
    super({ highWaterMark: 1 << 20 })
    this.#call = call
    this.#idleTimeoutMs = idleTimeoutMs
    this.#signal = signal
    call.pause()
    call.on('data', (res: { data?: Buffer }) => {
      this.#clearIdle()
      const data = res.data
      if (data !== undefined && data.length > 0 && !this.push(data)) call.pause()
    })
    call.on('end', () => {
      this.#clearIdle()
      this.push(null)
    })
    call.on('error', (err) => {
      this.#clearIdle()
      this.destroy(toContainerdError(err, 'Read'))
    })
    this.#onAbort = () => { this.destroy(signal?.reason as Error) }
    if (signal?.aborted === true) queueMicrotask(this.#onAbort)
    else signal?.addEventListener('abort', this.#onAbort, { once: true })
  }

  override _read (): void {
    if (this.#idleTimer === undefined) {
      this.#idleTimer = setTimeout(() => {
        this.destroy(new ContainerdError('ERR_CONTAINERD_TIMEOUT', `Read: no data for ${this.#idleTimeoutMs} ms`, 'Read'))
      }, this.#idleTimeoutMs)
    }
    this.#call.resume()
  }

  override _destroy (err: Error | null, callback: (error?: Error | null) => void): void {
    this.#clearIdle()
    this.#signal?.removeEventListener('abort', this.#onAbort)
    this.#call.cancel()
    callback(err)
  }

  #clearIdle (): void {
    clearTimeout(this.#idleTimer)
    this.#idleTimer = undefined
  }
}
