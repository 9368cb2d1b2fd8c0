// Renders deploy/ from src/deploy/. With --write, writes the files; without, says which differ (exit 1 if any).
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { renderDeployFiles } from '../src/deploy/deploy-files.js'

const root = fileURLToPath(new URL('..', import.meta.url))
const isWrite = process.argv.includes('--write')
let differing = 0
for (const file of renderDeployFiles()) {
  const path = `${root}${file.path}`
  if (isWrite) {
    await mkdir(dirname(path), { recursive: true })
    await writeFile(path, file.content)
    process.stdout.write(`wrote ${file.path}\n`)
  } else if (await readFile(path, 'utf8').catch(() => undefined) !== file.content) {
    differing++
    process.stdout.write(`differs: ${file.path}\n`)
  }
}
if (differing > 0) {
  process.stdout.write('run: node --import tsx scripts/render-deploy.ts --write\n')
  process.exitCode = 1
}
