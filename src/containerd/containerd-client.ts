import type { Readable } from 'node:stream'
import * as grpc from '@grpc/grpc-js'
import type { ContainerdEnvelope } from './containerd-events.js'
import { ContainerdError, backoffDelay, toContainerdError, unaryCall } from './grpc-call.js'
import { GrpcContentReadable } from './grpc-content-readable.js'
import { loadServices } from './grpc-protos.js'

export interface ContainerdClientOptions {
  /** Path of containerd's gRPC socket, e.g. `/run/containerd/containerd.sock`. */
  readonly socket: string
  /** containerd namespace every call is scoped to (`k8s.io` is Kubernetes'). */
  readonly namespace: string
  /** Deadline of each unary call and idle bound of each stream; default 2000 ms. */
  readonly callTimeoutMs?: number
}

export interface ContainerdDescriptor {
  readonly mediaType: string
  readonly digest: string
  readonly size: number
}

export interface ContainerdImage {
  readonly name: string
  readonly target: ContainerdDescriptor
  readonly labels: Readonly<Record<string, string>>
}

export interface ContainerdContentInfo {
  readonly digest: string
  readonly size: number
  readonly labels: Readonly<Record<string, string>>
}

export interface ReadContentOptions {
  /** First byte; default 0. */
  readonly offset?: number
  /** Bytes to read; 0 or omitted reads to the end. */
  readonly size?: number
  /** Aborting destroys the stream with the signal's reason. */
  readonly signal?: AbortSignal
  /** Fail the stream when the consumer waits this long for the next chunk; default callTimeoutMs. */
  readonly idleTimeoutMs?: number
}

export interface SubscribeHandlers {
  onEvent (envelope: ContainerdEnvelope): void
  /** The stream is open and containerd answered: events from now on are delivered. */
  onConnect? (): void
  /** The stream ended or failed (or could not be opened); a new one follows after a backoff. */
  onDisconnect? (error: ContainerdError): void
}

export interface SubscribeOptions {
  /** First re-subscribe delay; default 100 ms. */
  readonly initialBackoffMs?: number
  /** Longest re-subscribe delay; default 5000 ms. */
  readonly maxBackoffMs?: number
}

export interface EventSubscription {
  close (): void
}

const DEFAULT_CALL_TIMEOUT_MS = 2000
/** A stream that lived this long counts as healthy: the next failure starts the backoff over. */
const HEALTHY_STREAM_MS = 10_000
/** containerd rejects a label whose key and value together exceed this (`labels.Validate`). */
const MAX_LABEL_BYTES = 4096
const CHANNEL_OPTIONS: grpc.ChannelOptions = {
  'grpc.max_receive_message_length': 64 * 1024 * 1024,
  'grpc.initial_reconnect_backoff_ms': 100,
  'grpc.max_reconnect_backoff_ms': 2000,
  // The default 64 KiB window caps content reads at ~250 MB/s; blobs stream far faster with a larger one.
  'grpc-node.flow_control_window': 16 * 1024 * 1024,
}

interface RawDescriptor { media_type?: string, digest?: string, size?: number }
interface RawImage { name?: string, target?: RawDescriptor | null, labels?: Record<string, string> }
interface RawInfo { digest?: string, size?: number, labels?: Record<string, string> }
interface RawEnvelope {
  namespace?: string
  topic?: string
  timestamp?: { seconds?: number, nanos?: number } | null
  event?: { type_url?: string, value?: Buffer } | null
}

/**
 * A small client for containerd's own gRPC API (images, content, events, version) over its unix socket.
 * All services share one channel; grpc-js reconnects it with backoff. Every unary call has a deadline
 * and honours an AbortSignal; NOT_FOUND becomes `undefined`, other failures a ContainerdError.
 */
export class ContainerdClient {
  readonly namespace: string
  readonly callTimeoutMs: number
  readonly #images: grpc.Client
  readonly #content: grpc.Client
  readonly #events: grpc.Client
  readonly #versionClient: grpc.Client
  readonly #metadata: grpc.Metadata
  readonly #subscriptions = new Set<EventSubscription>()
  #isClosed = false

  constructor (options: ContainerdClientOptions) {
    if (typeof options.socket !== 'string' || options.socket === '') throw new TypeError('ContainerdClient: socket is required')
    if (typeof options.namespace !== 'string' || options.namespace === '') throw new TypeError('ContainerdClient: namespace is required')
    const callTimeoutMs = options.callTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS
    if (!(callTimeoutMs > 0)) throw new TypeError(`ContainerdClient: callTimeoutMs must be > 0, got ${callTimeoutMs}`)
    this.namespace = options.namespace
    this.callTimeoutMs = callTimeoutMs
    const services = loadServices()
    const target = `unix://${options.socket}`
    const credentials = grpc.credentials.createInsecure()
    this.#images = new services.Images(target, credentials, CHANNEL_OPTIONS)
    const shared = { ...CHANNEL_OPTIONS, channelOverride: this.#images.getChannel() }
    this.#content = new services.Content(target, credentials, shared)
    this.#events = new services.Events(target, credentials, shared)
    this.#versionClient = new services.Version(target, credentials, shared)
    this.#metadata = new grpc.Metadata()
    this.#metadata.set('containerd-namespace', options.namespace)
  }

  async version (signal?: AbortSignal): Promise<{ version: string, revision: string }> {
    const res = await this.#unary<{ version?: string, revision?: string }>(this.#versionClient, 'Version', {}, signal)
    return { version: res.version ?? '', revision: res.revision ?? '' }
  }

  async listImages (filters: readonly string[] = [], signal?: AbortSignal): Promise<ContainerdImage[]> {
    const res = await this.#unary<{ images?: RawImage[] }>(this.#images, 'List', { filters }, signal)
    return (res.images ?? []).flatMap((raw) => {
      const image = toImage(raw)
      return image === undefined ? [] : [image]
    })
  }

  async getImage (name: string, signal?: AbortSignal): Promise<ContainerdImage | undefined> {
    const res = await this.#orUndefined(this.#unary<{ image?: RawImage | null }>(this.#images, 'Get', { name }, signal))
    return res?.image == null ? undefined : toImage(res.image)
  }

  /**
   * Sets each label whose value is a string and removes each whose value is undefined, leaving the
   * image's other labels alone (one Update with field-mask paths `labels.<key>`). containerd stores no
   * empty labels: an empty string removes the label too. Resolves to the updated image, or undefined when
   * no image has that name. Throws a TypeError on an empty key or a label over containerd's 4096 bytes.
   */
  async updateImageLabels (name: string, changes: Readonly<Record<string, string | undefined>>, signal?: AbortSignal): Promise<ContainerdImage | undefined> {
    if (typeof name !== 'string' || name === '') throw new TypeError('updateImageLabels: image name is required')
    const labels: Record<string, string> = {}
    const paths: string[] = []
    for (const [key, value] of Object.entries(changes)) {
      if (key === '') throw new TypeError('updateImageLabels: label key must not be empty')
      if (value !== undefined && typeof value !== 'string') throw new TypeError(`updateImageLabels: label ${key} must be a string or undefined`)
      if (Buffer.byteLength(key) + Buffer.byteLength(value ?? '') > MAX_LABEL_BYTES) throw new TypeError(`updateImageLabels: label ${key} is over ${MAX_LABEL_BYTES} bytes`)
      if (value !== undefined) labels[key] = value
      paths.push(`labels.${key}`)
    }
    // An Update without paths would replace the whole record with our name-only image.
    if (paths.length === 0) return await this.getImage(name, signal)
    const request = { image: { name, labels }, update_mask: { paths } }
    const res = await this.#orUndefined(this.#unary<{ image?: RawImage | null }>(this.#images, 'Update', request, signal))
    return res?.image == null ? undefined : toImage(res.image)
  }

  async contentInfo (digest: string, signal?: AbortSignal): Promise<ContainerdContentInfo | undefined> {
    const res = await this.#orUndefined(this.#unary<{ info?: RawInfo | null }>(this.#content, 'Info', { digest }, signal))
    return res?.info == null ? undefined : toInfo(res.info)
  }

  /** Every blob of the namespace; bounded by `timeoutMs` (default 30 s) for the whole listing. */
  async * listContent (options: { filters?: readonly string[], signal?: AbortSignal, timeoutMs?: number } = {}): AsyncGenerator<ContainerdContentInfo> {
    this.#assertOpen()
    const deadline = new Date(Date.now() + (options.timeoutMs ?? 30_000))
    const call = serverStream(this.#content, 'List', { filters: options.filters ?? [] }, this.#metadata, { deadline })
    const onAbort = (): void => { call.cancel() }
    options.signal?.addEventListener('abort', onAbort, { once: true })
    try {
      for await (const res of call as AsyncIterable<{ info?: RawInfo[] }>) {
        for (const raw of res.info ?? []) {
          const info = toInfo(raw)
          if (info !== undefined) yield info
        }
      }
    } catch (err) {
      if (options.signal?.aborted === true) throw options.signal.reason
      throw toContainerdError(err, 'List')
    } finally {
      options.signal?.removeEventListener('abort', onAbort)
      call.cancel()
    }
  }

  /**
   * Streams a blob (or `size` bytes from `offset`) with backpressure. The stream fails with a
   * ContainerdError (NOT_FOUND, UNAVAILABLE, ...) or when no chunk arrives within the idle bound while
   * the consumer is waiting.
   */
  readContent (digest: string, options: ReadContentOptions = {}): Readable {
    this.#assertOpen()
    const request = { digest, offset: options.offset ?? 0, size: options.size ?? 0 }
    const call = serverStream(this.#content, 'Read', request, this.#metadata, {})
    return new GrpcContentReadable(call, options.idleTimeoutMs ?? this.callTimeoutMs, options.signal)
  }

  /**
   * Streams events matching `filters` (containerd filter syntax, ORed) and re-subscribes with backoff
   * whenever the stream ends or fails, until closed. Events between two streams are lost: use onConnect
   * to reload state.
   */
  subscribe (filters: readonly string[], handlers: SubscribeHandlers, options: SubscribeOptions = {}): EventSubscription {
    this.#assertOpen()
    const initialMs = options.initialBackoffMs ?? 100
    const maxMs = options.maxBackoffMs ?? 5000
    let isClosed = false
    let call: grpc.ClientReadableStream<RawEnvelope> | undefined
    let timer: NodeJS.Timeout | undefined
    let attempt = 0

    const open = (): void => {
      if (isClosed) return
      const startedAt = Date.now()
      let isDone = false
      const stream = serverStream(this.#events, 'Subscribe', { filters }, this.#metadata, {}) as grpc.ClientReadableStream<RawEnvelope>
      call = stream
      const finish = (err: unknown): void => {
        if (isDone) return
        isDone = true
        stream.cancel()
        if (isClosed) return
        if (Date.now() - startedAt >= HEALTHY_STREAM_MS) attempt = 0
        const error = err === undefined
          ? new ContainerdError('ERR_CONTAINERD_UNAVAILABLE', 'Subscribe: event stream ended', 'Subscribe')
          : toContainerdError(err, 'Subscribe')
        safely(() => handlers.onDisconnect?.(error))
        timer = setTimeout(open, backoffDelay(attempt++, initialMs, maxMs))
      }
      stream.on('data', (raw: RawEnvelope) => {
        const envelope = toEnvelope(raw)
        if (envelope !== undefined) safely(() => handlers.onEvent(envelope))
      })
      stream.on('error', finish)
      stream.on('end', () => finish(undefined))
      // containerd sends no headers until the first event: a Version call on the same connection tells
      // us the daemon is there and has the subscription.
      this.version().then(() => {
        if (!isDone && !isClosed) safely(() => handlers.onConnect?.())
      }, finish)
    }

    const subscription: EventSubscription = {
      close: () => {
        if (isClosed) return
        isClosed = true
        clearTimeout(timer)
        call?.cancel()
        this.#subscriptions.delete(subscription)
      },
    }
    this.#subscriptions.add(subscription)
    open()
    return subscription
  }

  /** Ends every subscription and closes the channel; later calls fail. */
  close (): void {
    if (this.#isClosed) return
    this.#isClosed = true
    for (const s of [...this.#subscriptions]) s.close()
    // One shared channel: closing it through any client closes it for all.
    this.#images.close()
  }

  #assertOpen (): void {
    if (this.#isClosed) throw new ContainerdError('ERR_CONTAINERD_UNAVAILABLE', 'containerd client is closed', 'client')
  }

  async #unary<T> (client: grpc.Client, method: string, request: unknown, signal?: AbortSignal): Promise<T> {
    this.#assertOpen()
    return await unaryCall<T>(client, method, request, { metadata: this.#metadata, timeoutMs: this.callTimeoutMs, signal })
  }

  async #orUndefined<T> (promise: Promise<T>): Promise<T | undefined> {
    try {
      return await promise
    } catch (err) {
      if (err instanceof ContainerdError && err.code === 'ERR_CONTAINERD_NOT_FOUND') return undefined
      throw err
    }
  }
}

type ServerStreamMethod = (request: unknown, metadata: grpc.Metadata, options: grpc.CallOptions) => grpc.ClientReadableStream<unknown>

function serverStream (client: grpc.Client, method: string, request: unknown, metadata: grpc.Metadata, options: grpc.CallOptions): grpc.ClientReadableStream<unknown> {
  const fn = (client as unknown as Record<string, ServerStreamMethod | undefined>)[method]
  if (typeof fn !== 'function') throw new TypeError(`no gRPC method ${method}`)
  return fn.call(client, request, metadata, options)
}

function safely (fn: () => void): void {
  try {
    fn()
  } catch {
    // A throwing handler must not break the stream's bookkeeping; handlers log their own errors.
  }
}

function toImage (raw: RawImage): ContainerdImage | undefined {
  const t = raw.target
  if (raw.name === undefined || raw.name === '' || t == null || t.digest === undefined || t.digest === '') return undefined
  return {
    name: raw.name,
    target: { mediaType: t.media_type ?? '', digest: t.digest, size: Number(t.size ?? 0) },
    labels: raw.labels ?? {},
  }
}

function toInfo (raw: RawInfo): ContainerdContentInfo | undefined {
  if (raw.digest === undefined || raw.digest === '') return undefined
  return { digest: raw.digest, size: Number(raw.size ?? 0), labels: raw.labels ?? {} }
}

function toEnvelope (raw: RawEnvelope): ContainerdEnvelope | undefined {
  if (raw.topic === undefined || raw.topic === '') return undefined
  const ts = raw.timestamp
  return {
    namespace: raw.namespace ?? '',
    topic: raw.topic,
    ...(ts == null ? {} : { timestamp: new Date(Number(ts.seconds ?? 0) * 1000 + Math.floor(Number(ts.nanos ?? 0) / 1e6)) }),
    typeUrl: raw.event?.type_url ?? '',
    payload: raw.event?.value ?? Buffer.alloc(0),
  }
}
