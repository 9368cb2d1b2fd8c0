// Layer 3, app: /app/package.json, /app/dist, /app/src/containerd/protos, /app/bin, /usr/local/bin/flotilla.
import { existsSync } from 'node:fs'
import { stat } from 'node:fs/promises'
import { join } from 'node:path'
import { APP_DIR, ROOT } from './constants.js'
import { addTree, type Entry } from './entries.js'

export async function appEntries (): Promise<Entry[]> {
  const entries: Entry[] = []
  const dist = join(ROOT, 'dist')
  if (!existsSync(join(dist, 'cli', 'main.js'))) throw new Error(`${dist}/cli/main.js missing: run \`npm run build\` first (\`npm run image\` does)`)
  await addTree(entries, dist, `${APP_DIR}/dist`, (rel) => rel.endsWith('.tsbuildinfo'))
  await addTree(entries, join(ROOT, 'src', 'containerd', 'protos'), `${APP_DIR}/src/containerd/protos`)
  await addTree(entries, join(ROOT, 'bin'), `${APP_DIR}/bin`)
  entries.push({ path: `${APP_DIR}/package.json`, type: 'file', mode: 0o644, source: join(ROOT, 'package.json'), size: (await stat(join(ROOT, 'package.json'))).size })
  // `flotilla …` on the PATH, for `kubectl exec`. An extensionless file outside any package is CommonJS,
  // which may import() the ESM entry point. bin/flotilla.js's `#!/usr/bin/env node` has no env here.
  entries.push({
    path: '/usr/local/bin/flotilla',
    type: 'file',
    mode: 0o755,
    content: Buffer.from(`#!/usr/local/bin/node\nimport(${JSON.stringify(`${APP_DIR}/dist/cli/main.js`)})\n`),
  })
  return entries
}

/** /app/native/build/Release/flotilla_native.node when `npm ci` built it here; none otherwise (with a warning). */
export async function nativeAddonEntries (): Promise<Entry[]> {
  const rel = join('native', 'build', 'Release', 'flotilla_native.node')
  const source = join(ROOT, rel)
  if (!existsSync(source)) {
    process.stderr.write(`WARNING: ${rel} missing (npm ci builds it): the image will serve blobs through JavaScript\n`)
    return []
  }
  return [{ path: `${APP_DIR}/${rel}`, type: 'file', mode: 0o755, source, size: (await stat(source)).size }]
}
