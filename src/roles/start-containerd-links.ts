import type { Logger } from 'pino'
import type { Digest } from '../oci/index.js'
import { ContainerdLinker, type ContainerdBlobs, type LinkableStore } from '../store/containerd-links.js'

export interface ContainerdLinksOptions {
  readonly store: LinkableStore
  readonly containerd: ContainerdBlobs
  readonly contentDir: string
  readonly dataDir: string
  readonly logger: Logger
  /** Peers were told the node lost a blob it still serves from its other copy: say so again. */
  readonly announce?: (digest: Digest) => void
}

/** One copy of each blob on the node: the store shares (or drops) what containerd has committed. */
export async function startContainerdLinks (options: ContainerdLinksOptions): Promise<ContainerdLinker> {
  const { announce, ...rest } = options
  const linker = new ContainerdLinker({ ...rest, ...(announce === undefined ? {} : { onStillHeld: announce }) })
  await linker.start()
  return linker
}
