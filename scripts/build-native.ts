// `npm ci` / `npm install` run this (the package's install script): it builds native/ (the sendfile addon,
// native/send-file.c) with the node-gyp that npm carries, against this Node's headers (npm's `nodedir`). A
// build that fails is not an install failure: flotilla then serves every byte through JavaScript, and says
// so in its log at start. Run with tsx, which `npm ci` has installed by then.
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
if (process.platform !== 'linux') {
  process.stderr.write('flotilla: the native addon is Linux only; blobs will be served through JavaScript\n')
  process.exit(0)
}
// Inside an npm script node-gyp is on PATH; run by hand, take the one npm carries.
const bundled = join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js')
const inPath = (process.env.PATH ?? '').split(':').some((d) => d !== '' && existsSync(join(d, 'node-gyp')))
const [command, args] = inPath ? ['node-gyp', []] : [process.execPath, [bundled]]
const headers = join(dirname(process.execPath), '..')
const nodedir = process.env.npm_config_nodedir ?? (existsSync(join(headers, 'include', 'node', 'node_api.h')) ? headers : undefined)
const result = spawnSync(command, [...args, 'rebuild', '--directory', join(root, 'native'), ...(nodedir === undefined ? [] : [`--nodedir=${nodedir}`])], {
  stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8', timeout: 300_000,
})
if (result.status !== 0) {
  const why = result.error?.message ?? (result.stderr ?? '').split('\n').find((l) => /error/i.test(l) && !/^gyp info/.test(l)) ?? `exit ${String(result.status)}`
  process.stderr.write(`flotilla: the native addon was not built (${why.trim()}); blobs will be served through JavaScript\n`)
}
