import { join } from 'node:path'
import type { ContainerdClient } from './containerd-client.js'
import type { CriImageClient } from './cri-image-client.js'
import { HOSTS_FILE, readOptional, registryDirs } from './hosts-config.js'
import { findMirror, normalizeMirrorUrl } from './hosts-toml.js'

export interface CheckHostsOptions {
  /** containerd's socket, as the checks name it. */
  readonly socket: string
  /** containerd and its CRI plugin on that socket, each call bounded by timeoutMs; built and closed by the caller. */
  readonly containerd: Pick<ContainerdClient, 'version'>
  readonly cri: Pick<CriImageClient, 'runtimeConfig'>
  readonly certsDir: string
  readonly mirrorUrl: string
  readonly registries?: readonly string[]
  /** Bound on each check; default 2000 ms. */
  readonly timeoutMs?: number
}

export interface HostsCheck {
  readonly check: string
  readonly ok: boolean
  readonly detail: string
  /** A finding that does not fail the check but bites later (what Spegel's users trip on). */
  readonly isWarning?: boolean
}

/**
 * For `flotilla containerd check`: containerd answers, its CRI plugin reads hosts.toml from certsDir (and only
 * from there), each registry's hosts.toml lists the agent first, and the agent answers `/v2/` in time. It
 * warns about what makes a correct wiring useless: containerd 2.1's transfer service (which ignores hosts.toml
 * unless `use_local_image_pull` is set) and `discard_unpacked_layers`. Never throws for a failed check; each
 * is bounded by timeoutMs.
 */
export async function checkHosts (options: CheckHostsOptions): Promise<HostsCheck[]> {
  const timeoutMs = options.timeoutMs ?? 2000
  const checks: HostsCheck[] = []
  const mirrorUrl = normalizeMirrorUrl(options.mirrorUrl)

  let version: string | undefined
  try {
    version = (await options.containerd.version()).version
    checks.push({ check: 'containerd', ok: true, detail: `containerd ${version} at ${options.socket}` })
  } catch (err) {
    checks.push({ check: 'containerd', ok: false, detail: `containerd not reachable at ${options.socket}: ${message(err)}` })
  }

  try {
    const config = await options.cri.runtimeConfig()
    checks.push(configPathCheck(config, options.certsDir))
    checks.push(...criWarnings(config, version))
  } catch (err) {
    checks.push({ check: 'cri config_path', ok: false, detail: `CRI status unavailable: ${message(err)}` })
  }

  for (const registry of registryDirs(options.registries)) {
    const path = join(options.certsDir, registry, HOSTS_FILE)
    const check = `hosts.toml ${registry}`
    const text = await readOptional(path)
    if (text === undefined) {
      checks.push({ check, ok: false, detail: `${path} is missing` })
      continue
    }
    try {
      const position = findMirror(text.toString('utf8'), mirrorUrl)
      checks.push({
        check,
        ok: position.isFirst,
        detail: position.isFirst
          ? `${path} lists ${mirrorUrl} first (${position.hostCount} host(s))`
          : position.isListed ? `${path} lists ${mirrorUrl} but not first` : `${path} does not list ${mirrorUrl}`,
      })
    } catch (err) {
      checks.push({ check, ok: false, detail: `${path}: ${message(err)}` })
    }
  }

  try {
    const res = await fetch(`${mirrorUrl}/v2/`, { signal: AbortSignal.timeout(timeoutMs), redirect: 'manual' })
    await res.body?.cancel()
    const ok = res.status === 200 || res.status === 401
    checks.push({ check: 'agent', ok, detail: `GET ${mirrorUrl}/v2/ → ${res.status}` })
  } catch (err) {
    // containerd has no response timeout: a port that accepts and never answers hangs its pulls.
    const isSilent = err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError')
    checks.push({
      check: 'agent', ok: false,
      detail: isSilent
        ? `${mirrorUrl} accepts connections but did not answer GET /v2/ within ${timeoutMs} ms: containerd would hang on it (it has no response timeout) — is something else holding the port?`
        : `GET ${mirrorUrl}/v2/ failed: ${message(err)}`,
    })
  }
  return checks
}

/** The CRI plugin reads hosts.toml from `certsDir`, and from nowhere else first. */
function configPathCheck (config: Record<string, unknown> | undefined, certsDir: string): HostsCheck {
  const registry = config?.registry as { configPath?: unknown } | undefined
  const configPath = typeof registry?.configPath === 'string' ? registry.configPath : ''
  const dirs = configPath.split(':').map((d) => d.replace(/\/+$/, '')).filter((d) => d !== '')
  const wanted = certsDir.replace(/\/+$/, '')
  if (dirs.length === 0) {
    return { check: 'cri config_path', ok: false, detail: 'containerd\'s CRI plugin has no registry.config_path: hosts.toml files are ignored (set plugins."io.containerd.grpc.v1.cri".registry.config_path)' }
  }
  if (dirs.length > 1) {
    const isFirst = dirs[0] === wanted
    return {
      check: 'cri config_path', ok: isFirst, isWarning: isFirst,
      detail: `CRI reads hosts.toml from several directories (${dirs.join(', ')}): ` + (isFirst
        ? `${wanted} comes first, so its files win; a registry without one there falls to the next directory's`
        : dirs.includes(wanted) ? `${dirs[0] ?? ''} comes before ${wanted}, and its files win` : `none of them is ${certsDir}`),
    }
  }
  return dirs[0] === wanted
    ? { check: 'cri config_path', ok: true, detail: `CRI reads hosts.toml from ${configPath}` }
    : { check: 'cri config_path', ok: false, detail: `CRI reads hosts.toml from ${configPath}, not ${certsDir}` }
}

/** What makes a correct wiring useless: the transfer service of containerd 2.1+, and discarded layers. */
function criWarnings (config: Record<string, unknown> | undefined, version: string | undefined): HostsCheck[] {
  const warnings: HostsCheck[] = []
  const m = /^v?(\d+)\.(\d+)/.exec(version ?? '')
  const isTransferPull = m !== null && (Number(m[1]) > 2 || (Number(m[1]) === 2 && Number(m[2]) >= 1))
  if (isTransferPull && findKey(config, 'useLocalImagePull') !== true) {
    warnings.push({
      check: 'cri transfer service', ok: true, isWarning: true,
      detail: `containerd ${version ?? ''} pulls through its transfer service, which ignores hosts.toml: set use_local_image_pull = true in [plugins."io.containerd.cri.v1.images"], or the agent is never asked`,
    })
  }
  if (findKey(config, 'discardUnpackedLayers') === true) {
    warnings.push({
      check: 'cri discard_unpacked_layers', ok: true, isWarning: true,
      detail: 'containerd deletes compressed layers after unpacking: the node serves peers only what the agent pulled and keeps (run the agent with --containerd-content-dir on the same filesystem to keep them without a second copy)',
    })
  }
  return warnings
}

/** The first value of `key` anywhere in the CRI config (its sections move between containerd versions). */
function findKey (value: unknown, key: string, depth = 0): unknown {
  if (typeof value !== 'object' || value === null || depth > 6) return undefined
  if (key in value) return (value as Record<string, unknown>)[key]
  for (const v of Object.values(value)) {
    const found = findKey(v, key, depth + 1)
    if (found !== undefined) return found
  }
  return undefined
}

function message (err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}
