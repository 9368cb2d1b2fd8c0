import { createReadStream } from 'node:fs'
import { readdir, stat } from 'node:fs/promises'
import { extname, join } from 'node:path'
import type { Readable } from 'node:stream'
import { parseAllDocuments } from 'yaml'
import { ConfigError } from '../config/config-error.js'
import { readLimited } from '../http/read-limited.js'

/** Far above any real manifest or rendered chart; bounds memory against a wrong path (a disk image, /dev/zero). */
export const MAX_MANIFEST_BYTES = 64 * 1024 * 1024

const MANIFEST_EXTENSIONS = new Set(['.yaml', '.yml', '.json'])

/** `-` in the list of paths: the documents come from stdin (`helm template … | flotilla images --from-manifests -`). */
export const STDIN_PATH = '-'

/**
 * Reads Kubernetes manifests: files (whatever their extension), directories (recursively, their `*.yaml`,
 * `*.yml` and `*.json` files in sorted order) and `-` for stdin; every document of multi-document YAML, in
 * order, empty documents left out. A document that does not parse throws a ConfigError naming file and line.
 */
export async function readManifestDocuments (paths: string[], stdin: NodeJS.ReadableStream = process.stdin): Promise<unknown[]> {
  if (paths.filter((p) => p === STDIN_PATH).length > 1) throw new ConfigError(`"${STDIN_PATH}" (stdin) can be given only once`)
  const documents: unknown[] = []
  for (const path of paths) {
    if (path === STDIN_PATH) {
      documents.push(...parseManifests(await readBounded(stdin as Readable, 'stdin'), 'stdin'))
      continue
    }
    for (const file of await manifestFiles(path)) {
      documents.push(...parseManifests(await readBounded(createReadStream(file), file), file))
    }
  }
  return documents
}

/** The file itself, or a directory's manifest files (recursively, sorted by path). */
async function manifestFiles (path: string): Promise<string[]> {
  let info
  try {
    info = await stat(path)
  } catch (err) {
    throw new ConfigError(`${path}: cannot read manifests (${describe(err)})`, { cause: err })
  }
  if (!info.isDirectory()) return [path]
  let entries
  try {
    entries = await readdir(path, { recursive: true, withFileTypes: true })
  } catch (err) {
    throw new ConfigError(`${path}: cannot list the directory (${describe(err)})`, { cause: err })
  }
  const files: string[] = []
  for (const entry of entries) {
    if (!MANIFEST_EXTENSIONS.has(extname(entry.name).toLowerCase())) continue
    const file = join(entry.parentPath, entry.name)
    // A symlink counts when it leads to a file (a dangling one is left out, as a directory is).
    if (entry.isFile() || (entry.isSymbolicLink() && await isFile(file))) files.push(file)
  }
  return files.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
}

async function isFile (path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile()
  } catch {
    return false
  }
}

async function readBounded (stream: Readable, label: string): Promise<string> {
  let bytes: Buffer | undefined
  try {
    bytes = await readLimited(stream, MAX_MANIFEST_BYTES)
  } catch (err) {
    throw new ConfigError(`${label}: cannot read manifests (${describe(err)})`, { cause: err })
  }
  if (bytes === undefined) throw new ConfigError(`${label}: larger than ${MAX_MANIFEST_BYTES / 1024 / 1024} MiB; not a manifest file?`)
  return bytes.toString('utf8')
}

function parseManifests (text: string, label: string): unknown[] {
  const documents: unknown[] = []
  // Duplicate keys are a common bug in rendered charts that kubectl tolerates (the last one wins): so do we.
  for (const doc of parseAllDocuments(text, { uniqueKeys: false })) {
    const [error] = doc.errors
    if (error !== undefined) {
      const pos = error.linePos?.[0]
      const where = pos === undefined ? label : `${label}:${pos.line}:${pos.col}`
      const reason = error.message.split('\n')[0]?.replace(/ at line \d+, column \d+:?$/, '') ?? error.code
      throw new ConfigError(`${where}: not valid YAML: ${reason}`, { cause: error })
    }
    if (doc.contents === null) continue
    let value: unknown
    try {
      value = doc.toJS()
    } catch (err) {
      // toJS refuses alias bombs (maxAliasCount) and the like.
      throw new ConfigError(`${label}:${lineOf(text, doc.contents.range[0])}: ${describe(err)}`, { cause: err })
    }
    // `---` followed by nothing (or only comments), as Helm renders a disabled template.
    if (value !== null && value !== undefined) documents.push(value)
  }
  return documents
}

function lineOf (text: string, offset: number): number {
  let line = 1
  for (let i = text.indexOf('\n'); i !== -1 && i < offset; i = text.indexOf('\n', i + 1)) line++
  return line
}

/** The first line of an error's message; for a system error, without the path it repeats (`ENOENT: no such file or directory`). */
function describe (err: unknown): string {
  if (!(err instanceof Error)) return String(err)
  const line = err.message.split('\n')[0] ?? ''
  return 'syscall' in err ? line.replace(/, \w+ '.*'$/, '') : line
}
