import { formatDefault, type OptionDeclaration } from './option.js'
import { OPTIONS } from './options.js'

// The README's configuration table is rendered from the declarations between these two comments;
// `npm run docs:config` rewrites it and a unit test fails while it is out of step.
export const TABLE_START = '<!-- config-table: rendered from src/config/options.ts by `npm run docs:config` -->'
export const TABLE_END = '<!-- /config-table -->'

/** A table cell: code or not, with the pipes a table would split on escaped (also inside code). */
function cell (text: string | undefined, isCode = true, note = ''): string {
  if (text === undefined) return ''
  const escaped = text.replaceAll('|', '\\|')
  return (isCode ? `\`${escaped}\`` : escaped) + note
}

/** One row per option: where it sits in the file, its flag and env variable, its default and what it does. */
export function renderConfigTable (options: readonly OptionDeclaration[] = OPTIONS): string {
  const rows = options.map((d) => [
    cell(d.name),
    cell(d.flag, true, d.isList === true ? ' (repeatable)' : ''),
    cell(d.env, true, d.isList === true ? ' (comma-separated)' : ''),
    cell(formatDefault(d)),
    cell(d.help, false),
  ])
  return [['file', 'flag', 'env', 'default', 'meaning'], ['---', '---', '---', '---', '---'], ...rows]
    .map((r) => `| ${r.join(' | ')} |`.replaceAll('  |', ' |'))
    .join('\n')
}

/** The README with `table` between the markers; throws when the markers are missing. */
export function replaceConfigTable (readme: string, table: string): string {
  const start = readme.indexOf(TABLE_START)
  const end = readme.indexOf(TABLE_END)
  if (start < 0 || end < start) throw new Error(`README.md has no configuration table markers (${TABLE_START} … ${TABLE_END})`)
  return `${readme.slice(0, start + TABLE_START.length)}\n${table}\n${readme.slice(end)}`
}
