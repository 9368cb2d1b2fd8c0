// Prints the README's configuration table, rendered from src/config/options.ts; with --write, puts it into
// README.md between its markers. `npm run docs:config` runs the latter.
import { readFile, writeFile } from 'node:fs/promises'
import { renderConfigTable, replaceConfigTable } from '../src/config/config-table.js'

const table = renderConfigTable()
if (process.argv.includes('--write')) {
  const file = new URL('../README.md', import.meta.url)
  await writeFile(file, replaceConfigTable(await readFile(file, 'utf8'), table))
} else {
  process.stdout.write(`${table}\n`)
}
