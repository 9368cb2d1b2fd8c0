// Input: the glibc libraries Node links against, from the build machine (its own platform) or from Debian 12's
// packages (the other platform; cached).
import { execFile as execFileCb } from 'node:child_process'
import { existsSync } from 'node:fs'
import { lstat, mkdir, readdir, readlink, realpath, rm, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { promisify } from 'node:util'
import { log } from './log.js'
import { GLIBC_DEBS, NODE_NEEDED, type Platform } from './platforms.js'

const execFile = promisify(execFileCb)

export interface LibFile {
  /** Path in the image, absolute. */
  readonly imagePath: string
  /** File on this machine holding its bytes (symlinks resolved). */
  readonly source: string
}

/** The host's copies of what `ldd` says the Node binary loads, placed at the paths they have here. */
export async function hostLibs (platform: Platform, nodeBinary: string): Promise<LibFile[]> {
  const { stdout } = await execFile('ldd', [nodeBinary])
  const libs: LibFile[] = []
  for (const line of stdout.split('\n')) {
    // "\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)" or "\t/lib64/ld-linux-x86-64.so.2 (0x…)"
    const m = /^\s*(?:(\S+) => )?(\/\S+) \(0x[0-9a-f]+\)$/.exec(line)
    if (m === null) continue
    const path = m[2] as string
    const soname = m[1]
    // Keep the soname under the multiarch directory, whatever /lib → /usr/lib merging the host does.
    const imagePath = soname === undefined ? path : `/lib/${platform.triplet}/${soname}`
    libs.push({ imagePath, source: await realpath(path) })
  }
  const names = new Set(libs.map((l) => l.imagePath.split('/').pop()))
  const missing = NODE_NEEDED.filter((n) => !names.has(n))
  if (missing.length > 0 || !libs.some((l) => l.imagePath === platform.interpreter)) {
    throw new Error(`ldd ${nodeBinary} did not list ${[...missing, platform.interpreter].join(', ')}:\n${stdout}`)
  }
  return libs
}

/**
 * Debian 12's glibc, libstdc++ and libgcc for another architecture: `apt-get download` with a private apt
 * state (lists, cache, an empty dpkg status) under the cache dir, so the system's apt is not touched; the
 * system's sources and keyrings verify the packages. Extracted with `dpkg-deb -x`.
 */
export async function debianLibs (cache: string, platform: Platform): Promise<LibFile[]> {
  const base = join(cache, 'debian', platform.debArch)
  const root = join(base, 'root')
  if (!existsSync(join(base, '.complete'))) {
    await rm(base, { recursive: true, force: true })
    const lists = join(base, 'apt', 'lists')
    const archives = join(base, 'apt', 'cache', 'archives')
    const debs = join(base, 'debs')
    for (const d of [join(lists, 'partial'), join(archives, 'partial'), debs, root]) await mkdir(d, { recursive: true })
    const status = join(base, 'apt', 'status')
    await writeFile(status, '')
    const options = [
      '-o', `APT::Architecture=${platform.debArch}`, '-o', `APT::Architectures::=${platform.debArch}`,
      '-o', `Dir::State::Lists=${lists}`, '-o', `Dir::Cache=${join(base, 'apt', 'cache')}`,
      '-o', `Dir::State::status=${status}`, '-o', 'Debug::NoLocking=1', '-o', 'APT::Sandbox::User=root', '-q',
    ]
    log(`apt-get download ${GLIBC_DEBS.map((p) => `${p}:${platform.debArch}`).join(' ')}`)
    await execFile('apt-get', [...options, 'update'], { maxBuffer: 16 << 20, timeout: 300_000 })
    await execFile('apt-get', [...options, 'download', ...GLIBC_DEBS.map((p) => `${p}:${platform.debArch}`)], { cwd: debs, maxBuffer: 16 << 20, timeout: 300_000 })
    for (const deb of (await readdir(debs)).filter((f) => f.endsWith('.deb')).sort()) {
      await execFile('dpkg-deb', ['-x', join(debs, deb), root])
    }
    await rm(join(base, 'apt'), { recursive: true, force: true }) // the package lists are ~20 MB; keep the .debs
    await writeFile(join(base, '.complete'), '')
  }
  const dirs = [`lib/${platform.triplet}`, `usr/lib/${platform.triplet}`]
  /** Resolves symlinks inside the extracted tree (absolute targets are relative to its root). */
  const resolveIn = async (rel: string, depth = 0): Promise<string> => {
    const path = join(root, rel)
    const st = await lstat(path)
    if (!st.isSymbolicLink()) return path
    if (depth > 8) throw new Error(`symlink loop at ${path}`)
    const target = await readlink(path)
    return await resolveIn(target.startsWith('/') ? target.slice(1) : join(dirname(rel), target), depth + 1)
  }
  const find = async (name: string): Promise<string> => {
    for (const d of dirs) {
      if (existsSync(join(root, d, name))) return await resolveIn(join(d, name))
    }
    throw new Error(`${name} not found in Debian's ${GLIBC_DEBS.join(', ')} for ${platform.debArch}`)
  }
  const libs: LibFile[] = []
  for (const name of NODE_NEEDED) libs.push({ imagePath: `/lib/${platform.triplet}/${name}`, source: await find(name) })
  libs.push({ imagePath: platform.interpreter, source: await resolveIn(platform.interpreter.slice(1)) })
  return libs
}
