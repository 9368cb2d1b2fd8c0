import { join } from 'node:path'
import * as grpc from '@grpc/grpc-js'
import { loadServices } from '../../../src/containerd/grpc-protos.js'

/**
 * An in-process stand-in for containerd's images/content/events/version services on a unix socket, with
 * per-namespace state and knobs to make calls hang. Only for unit tests: e2e tests use the real daemon.
 */
export interface FakeImage { name: string, digest: string, mediaType: string, size: number, labels?: Record<string, string> }

interface UpdateRequest { image?: { name?: string, labels?: Record<string, string> } | null, update_mask?: { paths?: string[] } | null }

type Writer = grpc.ServerWritableStream<{ filters?: string[] }, unknown>

export class FakeContainerd {
  readonly socket: string
  /** namespace → image name → image */
  readonly images = new Map<string, Map<string, FakeImage>>()
  /** namespace → digest → bytes */
  readonly blobs = new Map<string, Map<string, Buffer>>()
  /** Methods that never answer (e.g. 'Info', 'Get', 'Read'). */
  readonly hanging = new Set<string>()
  /** Read sends its first chunk then stalls. */
  isReadStalling = false
  readonly calls: Array<{ method: string, namespace: string }> = []
  private readonly subscribers = new Set<Writer>()
  private server: grpc.Server | undefined

  constructor (dir: string) {
    this.socket = join(dir, 'fake-containerd.sock')
  }

  get subscriberCount (): number {
    return this.subscribers.size
  }

  async start (): Promise<void> {
    const services = loadServices()
    const server = new grpc.Server()
    const ns = (call: { metadata: grpc.Metadata }): string => String(call.metadata.get('containerd-namespace')[0] ?? '')
    const record = (method: string, call: { metadata: grpc.Metadata }): boolean => {
      this.calls.push({ method, namespace: ns(call) })
      return this.hanging.has(method)
    }
    const notFound = (what: string): grpc.ServiceError => Object.assign(new Error(`${what}: not found`), { code: grpc.status.NOT_FOUND, details: `${what}: not found`, metadata: new grpc.Metadata() })
    const toImage = (i: FakeImage): unknown => ({ name: i.name, labels: { ...i.labels }, target: { media_type: i.mediaType, digest: i.digest, size: i.size } })

    server.addService(services.Images.service, {
      Get: (call: grpc.ServerUnaryCall<{ name: string }, unknown>, cb: grpc.sendUnaryData<unknown>) => {
        if (record('Get', call)) return
        const image = this.images.get(ns(call))?.get(call.request.name)
        if (image === undefined) cb(notFound(`image ${call.request.name}`))
        else cb(null, { image: toImage(image) })
      },
      List: (call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => {
        if (record('List', call)) return
        cb(null, { images: [...(this.images.get(ns(call))?.values() ?? [])].map(toImage) })
      },
      // containerd's field-mask semantics for labels: path `labels.k` copies k from the request's labels,
      // and a missing or empty value deletes it (containerd stores no empty labels).
      Update: (call: grpc.ServerUnaryCall<UpdateRequest, unknown>, cb: grpc.sendUnaryData<unknown>) => {
        if (record('Update', call)) return
        const name = call.request.image?.name ?? ''
        const image = this.images.get(ns(call))?.get(name)
        if (image === undefined) {
          cb(notFound(`image ${JSON.stringify(name)}`))
          return
        }
        const given = call.request.image?.labels ?? {}
        const labels = { ...image.labels }
        for (const path of call.request.update_mask?.paths ?? []) {
          if (!path.startsWith('labels.')) {
            cb(Object.assign(new Error(`unsupported path ${path}`), { code: grpc.status.UNIMPLEMENTED, details: `fake: unsupported path ${path}`, metadata: new grpc.Metadata() }))
            return
          }
          const key = path.slice('labels.'.length)
          const value = given[key]
          if (value === undefined || value === '') delete labels[key]
          else labels[key] = value
        }
        image.labels = labels
        cb(null, { image: toImage(image) })
      },
    })
    server.addService(services.Content.service, {
      Info: (call: grpc.ServerUnaryCall<{ digest: string }, unknown>, cb: grpc.sendUnaryData<unknown>) => {
        if (record('Info', call)) return
        const blob = this.blobs.get(ns(call))?.get(call.request.digest)
        if (blob === undefined) cb(notFound(`content ${call.request.digest}`))
        else cb(null, { info: { digest: call.request.digest, size: blob.length, labels: {} } })
      },
      List: (call: grpc.ServerWritableStream<unknown, unknown>) => {
        if (record('ListContent', call)) return
        const all = [...(this.blobs.get(ns(call)) ?? new Map<string, Buffer>())].map(([digest, b]) => ({ digest, size: b.length, labels: {} }))
        call.write({ info: all })
        call.end()
      },
      Read: (call: grpc.ServerWritableStream<{ digest: string, offset: number, size: number }, unknown>) => {
        if (record('Read', call)) return
        const blob = this.blobs.get(ns(call))?.get(call.request.digest)
        if (blob === undefined) {
          call.emit('error', notFound(`content ${call.request.digest}`))
          return
        }
        const start = Number(call.request.offset)
        const end = Number(call.request.size) > 0 ? start + Number(call.request.size) : blob.length
        for (let o = start; o < end; o += 1000) {
          call.write({ offset: o, data: blob.subarray(o, Math.min(end, o + 1000)) })
          if (this.isReadStalling) return
        }
        call.end()
      },
    })
    server.addService(services.Events.service, {
      Subscribe: (call: Writer) => {
        this.subscribers.add(call)
        call.on('cancelled', () => this.subscribers.delete(call))
      },
    })
    server.addService(services.Version.service, {
      Version: (call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => {
        if (record('Version', call)) return
        cb(null, { version: 'fake', revision: '0' })
      },
    })
    await new Promise<void>((resolve, reject) => {
      server.bindAsync(`unix://${this.socket}`, grpc.ServerCredentials.createInsecure(), (err) => { if (err) reject(err); else resolve() })
    })
    this.server = server
  }

  setImage (namespace: string, image: FakeImage): void {
    let m = this.images.get(namespace)
    if (m === undefined) this.images.set(namespace, m = new Map())
    m.set(image.name, image)
  }

  setBlob (namespace: string, digest: string, bytes: Buffer): void {
    let m = this.blobs.get(namespace)
    if (m === undefined) this.blobs.set(namespace, m = new Map())
    m.set(digest, bytes)
  }

  /** Publishes an event whose payload carries `key` as field 1, as containerd's image/content events do. */
  publish (namespace: string, topic: string, key: string): void {
    const bytes = Buffer.from(key)
    const value = Buffer.concat([Buffer.from([0x0a]), varint(bytes.length), bytes])
    for (const s of this.subscribers) s.write({ namespace, topic, event: { type_url: 'fake', value } })
  }

  /** Ends every event stream (as a daemon restart would), leaving the server up. */
  dropSubscribers (): void {
    for (const s of this.subscribers) s.end()
    this.subscribers.clear()
  }

  async stop (): Promise<void> {
    const server = this.server
    this.server = undefined
    if (server === undefined) return
    for (const s of this.subscribers) s.end()
    this.subscribers.clear()
    server.forceShutdown()
  }
}

function varint (n: number): Buffer {
  const out: number[] = []
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80)
    n = Math.floor(n / 128)
  }
  out.push(n)
  return Buffer.from(out)
}
