import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'

/** Uploads bytes as a blob of `repo` straight to Distribution's upload API (POST, then PUT with the digest); returns the digest. */
export async function pushBlob (registryUrl: string, repo: string, bytes: Buffer): Promise<string> {
  const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`
  const start = await fetch(`${registryUrl}/v2/${repo}/blobs/uploads/`, { method: 'POST', signal: AbortSignal.timeout(10_000) })
  assert.equal(start.status, 202)
  const location = new URL(start.headers.get('location') ?? '', registryUrl)
  location.searchParams.set('digest', digest)
  const put = await fetch(location, { method: 'PUT', body: bytes, headers: { 'content-type': 'application/octet-stream' }, signal: AbortSignal.timeout(30_000) })
  assert.equal(put.status, 201, await put.text())
  return digest
}
