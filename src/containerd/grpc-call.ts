import * as grpc from '@grpc/grpc-js'
import type { ContainerdErrorCode as AnyContainerdErrorCode } from '../errors/error-code.js'
import { FlotillaError } from '../errors/flotilla-error.js'

export type ContainerdErrorCode = Exclude<AnyContainerdErrorCode, 'ERR_HOSTS_TOML_INVALID' | 'ERR_HOSTS_OPTION_INVALID'>

/**
 * A failed call to containerd (or its CRI plugin), with the gRPC status kept for logs. `isUnavailable`:
 * containerd is not there or not answering, and callers treat it as a miss and try elsewhere.
 */
export class ContainerdError extends FlotillaError<ContainerdErrorCode> {
  override readonly name = 'ContainerdError'
  constructor (
    code: ContainerdErrorCode,
    message: string,
    readonly method: string,
    readonly grpcCode?: grpc.status,
    options?: ErrorOptions,
  ) {
    super(code, message, options)
  }
}

function isServiceError (err: unknown): err is grpc.ServiceError {
  return err instanceof Error && typeof (err as Partial<grpc.ServiceError>).code === 'number'
}

export function toContainerdError (err: unknown, method: string): ContainerdError {
  if (err instanceof ContainerdError) return err
  if (!isServiceError(err)) return new ContainerdError('ERR_CONTAINERD_CALL', `${method}: ${String(err)}`, method, undefined, { cause: err })
  const detail = err.details === '' ? grpc.status[err.code] : err.details
  const code: ContainerdErrorCode = err.code === grpc.status.UNAVAILABLE
    ? 'ERR_CONTAINERD_UNAVAILABLE'
    : err.code === grpc.status.DEADLINE_EXCEEDED
      ? 'ERR_CONTAINERD_TIMEOUT'
      : err.code === grpc.status.NOT_FOUND
        ? 'ERR_CONTAINERD_NOT_FOUND'
        : err.code === grpc.status.CANCELLED ? 'ERR_CONTAINERD_CANCELLED' : 'ERR_CONTAINERD_CALL'
  return new ContainerdError(code, `${method}: ${detail}`, method, err.code, { cause: err })
}

type UnaryMethod = (
  request: unknown,
  metadata: grpc.Metadata,
  options: grpc.CallOptions,
  callback: (err: grpc.ServiceError | null, response?: unknown) => void,
) => grpc.ClientUnaryCall

export interface UnaryOptions {
  readonly metadata: grpc.Metadata
  readonly timeoutMs: number
  readonly signal?: AbortSignal
}

/**
 * One unary call with a deadline, cancelled when `signal` aborts. Rejects with a ContainerdError, or with
 * the signal's reason when it was aborted.
 */
export async function unaryCall<T> (client: grpc.Client, method: string, request: unknown, options: UnaryOptions): Promise<T> {
  const { signal } = options
  signal?.throwIfAborted()
  const fn = (client as unknown as Record<string, UnaryMethod | undefined>)[method]
  if (typeof fn !== 'function') throw new TypeError(`no gRPC method ${method}`)
  return await new Promise<T>((resolve, reject) => {
    const deadline = new Date(Date.now() + options.timeoutMs)
    const onAbort = (): void => { call.cancel() }
    const call = fn.call(client, request, options.metadata, { deadline }, (err, response) => {
      signal?.removeEventListener('abort', onAbort)
      if (signal?.aborted === true) reject(signal.reason)
      else if (err !== null) reject(toContainerdError(err, method))
      else resolve(response as T)
    })
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}

/** Exponential backoff with full jitter in [max(initial, d/2), d]. */
export function backoffDelay (attempt: number, initialMs: number, maxMs: number): number {
  const ceiling = Math.min(maxMs, initialMs * 2 ** Math.min(attempt, 30))
  const floor = Math.max(initialMs, ceiling / 2)
  return Math.round(floor + Math.random() * (ceiling - floor))
}
