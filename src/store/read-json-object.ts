import { readFile } from 'node:fs/promises'
import { isNotFound } from './fs-blob-store.js'

/**
 * A persisted index's JSON object, or undefined when the file does not exist yet. A file that is not a JSON
 * object is refused with one line naming it (`what`, e.g. "tag index"): it is never silently replaced.
 */
export async function readJsonObject (file: string, what: string): Promise<Record<string, unknown> | undefined> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    if (isNotFound(err)) return undefined
    throw err
  }
  let doc: unknown
  try {
    doc = JSON.parse(text)
  } catch {
    throw new Error(`${what} ${file} is not valid JSON; move it aside to start with an empty index`)
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    throw new Error(`${what} ${file} is not a JSON object; move it aside to start with an empty index`)
  }
  return doc as Record<string, unknown>
}
