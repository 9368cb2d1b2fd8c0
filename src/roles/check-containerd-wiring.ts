import { ContainerdClient } from '../containerd/containerd-client.js'
import { CriImageClient } from '../containerd/cri-image-client.js'
import { checkHosts, type CheckHostsOptions, type HostsCheck } from '../containerd/check-hosts.js'

export interface CheckContainerdWiringOptions extends Omit<CheckHostsOptions, 'containerd' | 'cri'> {
  /** Namespace the containerd client is scoped to; default `k8s.io`. */
  readonly namespace?: string
}

/** `flotilla containerd check`: the containerd and CRI clients it needs, built for the checks and closed after. */
export async function checkContainerdWiring (options: CheckContainerdWiringOptions): Promise<HostsCheck[]> {
  const { namespace = 'k8s.io', ...hosts } = options
  const callTimeoutMs = hosts.timeoutMs ?? 2000
  const containerd = new ContainerdClient({ socket: hosts.socket, namespace, callTimeoutMs })
  try {
    const cri = new CriImageClient({ socket: hosts.socket, callTimeoutMs })
    try {
      return await checkHosts({ ...hosts, containerd, cri })
    } finally {
      cri.close()
    }
  } finally {
    containerd.close()
  }
}
