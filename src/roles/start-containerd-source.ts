import type { Logger } from 'pino'
import type { Config } from '../config/config-schema.js'
import { ContainerdClient } from '../containerd/containerd-client.js'
import { ContainerdContentSource } from '../containerd/containerd-content-source.js'
import { CriImageClient } from '../containerd/cri-image-client.js'
import { LifecycleStack } from './lifecycle-stack.js'

export interface StartedContainerdSource {
  readonly source: ContainerdContentSource
  /** The client the source uses, for others that talk to the same containerd (the pre-cache). */
  readonly client: ContainerdClient
  /**
   * A client of the same containerd's CRI image service (the pre-cache pulls through it); the caller closes
   * it. Built here so that gRPC is loaded only on nodes wired to containerd (this module is imported lazily).
   */
  criClient (callTimeoutMs: number): CriImageClient
  close (): Promise<void>
}

/** What the node's containerd holds, as a local source (its client is closed after the source). */
export async function startContainerdSource (containerd: Config['containerd'] & { readonly socket: string }, logger: Logger): Promise<StartedContainerdSource> {
  return await LifecycleStack.start(logger, async (stack) => {
    const client = new ContainerdClient({ socket: containerd.socket, namespace: containerd.namespace })
    stack.defer(() => { client.close() })
    const source = stack.use(new ContainerdContentSource({
      client, logger: logger.child({ component: 'containerd' }),
      ...(containerd.contentDir === undefined ? {} : { contentDir: containerd.contentDir }),
    }))
    await source.start()
    return {
      source, client,
      criClient: (callTimeoutMs) => new CriImageClient({ socket: containerd.socket, callTimeoutMs }),
      close: async () => { await stack.close() },
    }
  })
}
