// Input: the production node_modules, `npm ci --omit=dev` from the lockfile (cached).
import { execFile as execFileCb } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { ROOT } from './constants.js'
import { log } from './log.js'
import type { Platform } from './platforms.js'

const execFile = promisify(execFileCb)

/** Production node_modules for the platform, installed once per lockfile into the cache. */
export async function ensureNodeModules (cache: string, platform: Platform): Promise<string> {
  const lock = await readFile(join(ROOT, 'package-lock.json'))
  const pkg = await readFile(join(ROOT, 'package.json'))
  const key = createHash('sha256').update(lock).update('\0').update(pkg).update('\0').update(platform.nodeArch).digest('hex').slice(0, 16)
  const dir = join(cache, 'node_modules', `${platform.nodeArch}-${key}`)
  if (existsSync(join(dir, '.complete'))) return join(dir, 'node_modules')
  await rm(dir, { recursive: true, force: true })
  await mkdir(dir, { recursive: true })
  await writeFile(join(dir, 'package.json'), pkg)
  await writeFile(join(dir, 'package-lock.json'), lock)
  log(`npm ci --omit=dev --cpu=${platform.nodeArch}`)
  await execFile('npm', ['ci', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund', '--loglevel=error', '--os=linux', `--cpu=${platform.nodeArch}`],
    { cwd: dir, maxBuffer: 64 << 20, timeout: 600_000 })
  await writeFile(join(dir, '.complete'), '')
  return join(dir, 'node_modules')
}
