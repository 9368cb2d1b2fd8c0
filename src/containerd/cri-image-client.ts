import * as grpc from '@grpc/grpc-js'
import { ContainerdError, unaryCall } from './grpc-call.js'
import { loadServices } from './grpc-protos.js'

export interface CriImageClientOptions {
  /** The CRI socket; containerd serves CRI on its main socket, e.g. `/run/containerd/containerd.sock`. */
  readonly socket: string
  /** Deadline of the quick calls (status, list, remove); default 2000 ms. Pulls take their own. */
  readonly callTimeoutMs?: number
}

export interface CriImage {
  readonly id: string
  readonly repoTags: readonly string[]
  readonly repoDigests: readonly string[]
  readonly size: number
  readonly pinned: boolean
}

export interface CriAuth {
  readonly username?: string
  readonly password?: string
  /** base64 `user:password`, as in docker's config.json. */
  readonly auth?: string
  readonly serverAddress?: string
  readonly identityToken?: string
  readonly registryToken?: string
}

export interface PullImageOptions {
  /** Bound on the whole pull; default 5 minutes. */
  readonly timeoutMs?: number
  readonly auth?: CriAuth
  readonly signal?: AbortSignal
}

interface RawCriImage { id?: string, repo_tags?: string[], repo_digests?: string[], size?: number, pinned?: boolean }

/**
 * The CRI v1 image service, as the kubelet (or crictl) drives it: pulls happen inside containerd and use
 * its registry configuration (hosts.toml), unlike `ctr pull`.
 */
export class CriImageClient {
  readonly #images: grpc.Client
  readonly #runtime: grpc.Client
  readonly #callTimeoutMs: number
  readonly #metadata = new grpc.Metadata()

  constructor (options: CriImageClientOptions) {
    if (typeof options.socket !== 'string' || options.socket === '') throw new TypeError('CriImageClient: socket is required')
    this.#callTimeoutMs = options.callTimeoutMs ?? 2000
    if (!(this.#callTimeoutMs > 0)) throw new TypeError(`CriImageClient: callTimeoutMs must be > 0, got ${this.#callTimeoutMs}`)
    const services = loadServices()
    const target = `unix://${options.socket}`
    const credentials = grpc.credentials.createInsecure()
    this.#images = new services.CriImage(target, credentials, {})
    this.#runtime = new services.CriRuntime(target, credentials, { channelOverride: this.#images.getChannel() })
  }

  /** Pulls `ref` and returns the image reference containerd stored (the image ID, `sha256:<config>`). */
  async pullImage (ref: string, options: PullImageOptions = {}): Promise<string> {
    const a = options.auth
    const request = {
      image: { image: ref },
      ...(a === undefined
        ? {}
        : {
            auth: {
              username: a.username ?? '',
              password: a.password ?? '',
              auth: a.auth ?? '',
              server_address: a.serverAddress ?? '',
              identity_token: a.identityToken ?? '',
              registry_token: a.registryToken ?? '',
            },
          }),
    }
    const res = await unaryCall<{ image_ref?: string }>(this.#images, 'PullImage', request, {
      metadata: this.#metadata,
      timeoutMs: options.timeoutMs ?? 5 * 60_000,
      signal: options.signal,
    })
    return res.image_ref ?? ''
  }

  /** The image as the kubelet sees it, or undefined when containerd does not have it. */
  async imageStatus (ref: string, signal?: AbortSignal): Promise<CriImage | undefined> {
    const res = await this.#call<{ image?: RawCriImage | null }>('ImageStatus', { image: { image: ref }, verbose: false }, signal)
    return res.image == null || (res.image.id ?? '') === '' ? undefined : toCriImage(res.image)
  }

  async listImages (signal?: AbortSignal): Promise<CriImage[]> {
    const res = await this.#call<{ images?: RawCriImage[] }>('ListImages', {}, signal)
    return (res.images ?? []).map(toCriImage)
  }

  /** Removes the image (all its names); removing an absent image succeeds, as in CRI. */
  async removeImage (ref: string, signal?: AbortSignal): Promise<void> {
    await this.#call('RemoveImage', { image: { image: ref } }, signal)
  }

  /**
   * The CRI plugin's effective configuration (RuntimeService.Status, verbose), e.g.
   * `config.registry.configPath`. Undefined when the runtime does not report it.
   */
  async runtimeConfig (signal?: AbortSignal): Promise<Record<string, unknown> | undefined> {
    const res = await unaryCall<{ info?: Record<string, string> }>(this.#runtime, 'Status', { verbose: true }, {
      metadata: this.#metadata,
      timeoutMs: this.#callTimeoutMs,
      signal,
    })
    const raw = res.info?.config
    if (raw === undefined) return undefined
    try {
      const parsed: unknown = JSON.parse(raw)
      return typeof parsed === 'object' && parsed !== null ? parsed as Record<string, unknown> : undefined
    } catch (err) {
      throw new ContainerdError('ERR_CONTAINERD_CALL', 'Status: config is not JSON', 'Status', undefined, { cause: err })
    }
  }

  close (): void {
    this.#images.close()
  }

  async #call<T> (method: string, request: unknown, signal?: AbortSignal): Promise<T> {
    return await unaryCall<T>(this.#images, method, request, { metadata: this.#metadata, timeoutMs: this.#callTimeoutMs, signal })
  }
}

function toCriImage (raw: RawCriImage): CriImage {
  return {
    id: raw.id ?? '',
    repoTags: raw.repo_tags ?? [],
    repoDigests: raw.repo_digests ?? [],
    size: Number(raw.size ?? 0),
    pinned: raw.pinned ?? false,
  }
}
