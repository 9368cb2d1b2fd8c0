import { constants as fsConstants } from 'node:fs'
import { copyFile, mkdir, readFile, readdir, rename, rm, rmdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import {
  DEFAULT_DIAL_TIMEOUT,
  DEFAULT_HOSTS_DIR,
  HOSTS_TOML_MARKER,
  defaultUpstreamServer,
  hostsDirName,
  normalizeMirrorUrl,
  renderHostsToml,
} from './hosts-toml.js'

/** The node's original hosts.toml, byte for byte. */
export const BACKUP_SUFFIX = '.flotilla-backup'
/** Marks "there was no hosts.toml before flotilla": restore then deletes ours. */
export const NO_ORIGINAL_SUFFIX = '.flotilla-none'
export const HOSTS_FILE = 'hosts.toml'

export interface ConfigureHostsOptions {
  /** containerd's `registry.config_path`, e.g. `/etc/containerd/certs.d`. */
  readonly certsDir: string
  /** The agent as containerd reaches it, e.g. `http://127.0.0.1:5000`. */
  readonly mirrorUrl: string
  /** Registries to route through the agent; empty or omitted means `_default` (every registry). */
  readonly registries?: readonly string[]
  /** `server` per registry; default `https://registry-1.docker.io` for docker.io, `https://<registry>` else. */
  readonly upstreams?: ReadonlyMap<string, string>
  /** Go duration; default `200ms`. */
  readonly dialTimeout?: string
  /** Compute the files without touching the disk. */
  readonly dryRun?: boolean
}

export interface ConfiguredHostsFile {
  readonly registry: string
  readonly path: string
  readonly content: string
  /** What was (or, in a dry run, would be) done to the file. */
  readonly action: 'created' | 'updated' | 'unchanged'
  /** Whether the node had its own hosts.toml (kept in the backup and merged after ours). */
  readonly hasOriginal: boolean
  /** Path of the backup of the original, when there is one. */
  readonly backupPath?: string
}

export interface RestoreHostsOptions {
  readonly certsDir: string
  /** Registries to restore; empty or omitted means every directory flotilla configured. */
  readonly registries?: readonly string[]
  readonly dryRun?: boolean
}

export interface RestoredHostsFile {
  readonly registry: string
  readonly path: string
  /** `restored`: the backup is back; `removed`: ours deleted (there was no original); `not-configured`: nothing of ours. */
  readonly action: 'restored' | 'removed' | 'not-configured'
}

interface NoOriginalMarker { readonly isDirCreated: boolean }

/**
 * Writes `<certsDir>/<registry>/hosts.toml` for each registry with the agent first. The first run keeps
 * the node's file as `hosts.toml.flotilla-backup` (or records that there was none); later runs merge from
 * that backup, so running twice yields the same file and never touches the backup. All files are
 * rendered before any is written: an unparsable original fails the whole call without changes.
 */
export async function configureHosts (options: ConfigureHostsOptions): Promise<ConfiguredHostsFile[]> {
  const mirrorUrl = normalizeMirrorUrl(options.mirrorUrl)
  const registries = registryDirs(options.registries)
  const plans = []
  for (const registry of registries) {
    const dir = join(options.certsDir, registry)
    const path = join(dir, HOSTS_FILE)
    const current = await readOptional(path)
    const backup = await readOptional(path + BACKUP_SUFFIX)
    const hasNoOriginalMarker = (await readOptional(path + NO_ORIGINAL_SUFFIX)) !== undefined
    const isFirstRun = backup === undefined && !hasNoOriginalMarker
    const original = backup ?? (hasNoOriginalMarker ? undefined : current)
    const server = registry === DEFAULT_HOSTS_DIR ? undefined : upstreamFor(registry, options.upstreams)
    const content = renderHostsToml({
      mirrorUrl,
      dialTimeout: options.dialTimeout ?? DEFAULT_DIAL_TIMEOUT,
      ...(server === undefined ? {} : { server }),
      ...(original === undefined ? {} : { original: original.toString('utf8') }),
    })
    const action = current === undefined ? 'created' : current.toString('utf8') === content ? 'unchanged' : 'updated'
    plans.push({ registry, dir, path, current, original, isFirstRun, content, action } as const)
  }
  const results: ConfiguredHostsFile[] = []
  for (const plan of plans) {
    const backupPath = plan.path + BACKUP_SUFFIX
    if (options.dryRun !== true) {
      const isDirCreated = (await mkdir(plan.dir, { recursive: true })) !== undefined
      if (plan.isFirstRun) {
        if (plan.current === undefined) {
          const marker: NoOriginalMarker = { isDirCreated }
          await writeFile(plan.path + NO_ORIGINAL_SUFFIX, `${JSON.stringify(marker)}\n`, { flag: 'wx' })
        } else {
          await copyFile(plan.path, backupPath, fsConstants.COPYFILE_EXCL)
        }
      }
      if (plan.action !== 'unchanged') await writeAtomically(plan.path, plan.content)
    }
    results.push({
      registry: plan.registry,
      path: plan.path,
      content: plan.content,
      action: plan.action,
      hasOriginal: plan.original !== undefined,
      ...(plan.original === undefined ? {} : { backupPath }),
    })
  }
  return results
}

/**
 * Undoes configureHosts: the backup goes back byte for byte (a rename), or our file is deleted when the
 * node had none (and the directory too, when we created it and it is empty).
 */
export async function restoreHosts (options: RestoreHostsOptions): Promise<RestoredHostsFile[]> {
  const registries = options.registries === undefined || options.registries.length === 0
    ? await configuredRegistries(options.certsDir)
    : options.registries.map(hostsDirName)
  const results: RestoredHostsFile[] = []
  for (const registry of registries) {
    const dir = join(options.certsDir, registry)
    const path = join(dir, HOSTS_FILE)
    const backupPath = path + BACKUP_SUFFIX
    const markerPath = path + NO_ORIGINAL_SUFFIX
    const marker = await readOptional(markerPath)
    if (await readOptional(backupPath) !== undefined) {
      if (options.dryRun !== true) {
        await rename(backupPath, path)
        await rm(markerPath, { force: true })
      }
      results.push({ registry, path, action: 'restored' })
    } else if (marker !== undefined) {
      if (options.dryRun !== true) {
        const current = await readOptional(path)
        // Someone replaced our file since: theirs stays.
        if (current !== undefined && current.toString('utf8').startsWith(HOSTS_TOML_MARKER)) await rm(path, { force: true })
        await rm(markerPath, { force: true })
        if (parseMarker(marker).isDirCreated) await rmdir(dir).catch(() => undefined)
      }
      results.push({ registry, path, action: 'removed' })
    } else {
      results.push({ registry, path, action: 'not-configured' })
    }
  }
  return results
}

export function registryDirs (registries: readonly string[] | undefined): string[] {
  const list = registries === undefined || registries.length === 0 ? [DEFAULT_HOSTS_DIR] : registries.map(hostsDirName)
  return [...new Set(list)]
}

function upstreamFor (registry: string, upstreams: ReadonlyMap<string, string> | undefined): string {
  if (upstreams !== undefined) {
    for (const [name, url] of upstreams) if (hostsDirName(name) === registry) return url
  }
  return defaultUpstreamServer(registry)
}

/** Registry directories holding a backup or a no-original marker. */
async function configuredRegistries (certsDir: string): Promise<string[]> {
  let entries: string[]
  try {
    entries = await readdir(certsDir)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw err
  }
  const found: string[] = []
  for (const name of entries.sort()) {
    const base = join(certsDir, name, HOSTS_FILE)
    if (await readOptional(base + BACKUP_SUFFIX) !== undefined || await readOptional(base + NO_ORIGINAL_SUFFIX) !== undefined) found.push(name)
  }
  return found
}

export async function readOptional (path: string): Promise<Buffer | undefined> {
  try {
    return await readFile(path)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined
    throw err
  }
}

/** containerd re-reads hosts.toml on every pull: it must never see a half-written file. */
async function writeAtomically (path: string, content: string): Promise<void> {
  const tmp = `${path}.flotilla-tmp-${process.pid}`
  try {
    await writeFile(tmp, content, { mode: 0o644 })
    await rename(tmp, path)
  } catch (err) {
    await rm(tmp, { force: true })
    throw err
  }
}

function parseMarker (raw: Buffer): NoOriginalMarker {
  try {
    const parsed = JSON.parse(raw.toString('utf8')) as Partial<NoOriginalMarker>
    return { isDirCreated: parsed.isDirCreated === true }
  } catch {
    return { isDirCreated: false }
  }
}
