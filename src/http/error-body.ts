import type { Readable } from 'node:stream'
import { oneLine } from '../errors/one-line.js'
import { ociErrorMessage } from '../oci/index.js'
import { readLimited } from './read-limited.js'

/** What a failed answer's body says: its OCI error messages, else how the body starts (bounded, one line). */
export async function errorBodyMessage (body: Readable): Promise<string> {
  const text = (await readLimited(body, 64 * 1024))?.toString('utf8') ?? ''
  return ociErrorMessage(text) ?? oneLine(text)
}
