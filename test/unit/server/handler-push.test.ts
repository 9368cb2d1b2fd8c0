// Content given to the agent (issue 12's `flotilla load`): the push API accepts whole blobs and manifests
// from this host, verifies them, and only then lets a tag resolve; others are denied.
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { networkInterfaces } from 'node:os'
import { after, before, describe, test } from 'node:test'
import type { Digest } from '../../../src/oci/index.js'
import { blobOnlyUpstream } from '../../helpers/blob-only-upstream.js'
import { startHandlerServer, type HandlerServer } from './handler-server.js'
import { ociCode, rawRequest } from './raw-request.js'

const outside = Object.values(networkInterfaces()).flat().find((a) => a !== undefined && !a.internal && a.family === 'IPv4')?.address
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json'

function digestOf (bytes: Buffer): Digest {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}` as Digest
}

describe('the push API (flotilla load)', () => {
  let h: HandlerServer
  const config = Buffer.from('{"architecture":"amd64","os":"linux"}')
  const layer = randomBytes(3 * 1024 * 1024 + 17)
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: OCI_MANIFEST,
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: digestOf(config), size: config.byteLength },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: digestOf(layer), size: layer.byteLength }],
  }))

  before(async () => {
    // The upstream is out of reach: whatever resolves comes from what was loaded.
    h = await startHandlerServer(blobOnlyUpstream(async () => { throw new Error('upstream unreachable') }), { host: '0.0.0.0' })
  })
  after(async () => { await h?.close() })

  const upload = async (bytes: Buffer, digest: string): Promise<Response> => {
    const start = await fetch(`${h.url}/v2/team/app/blobs/uploads/`, { method: 'POST', signal: AbortSignal.timeout(5000) })
    assert.equal(start.status, 202)
    const location = start.headers.get('location') ?? ''
    assert.match(location, /^\/v2\/team\/app\/blobs\/uploads\/[0-9a-f-]{36}$/)
    return await fetch(`${h.url}${location}?digest=${digest}`, { method: 'PUT', body: bytes, headers: { 'content-type': 'application/octet-stream' }, signal: AbortSignal.timeout(10_000) })
  }

  test('a manifest whose blobs are not held is refused, and its tag does not resolve', async () => {
    const put = await fetch(`${h.url}/v2/team/app/manifests/v1`, { method: 'PUT', body: manifest, headers: { 'content-type': OCI_MANIFEST }, signal: AbortSignal.timeout(5000) })
    assert.equal(put.status, 404)
    assert.equal(ociCode(await put.text()), 'MANIFEST_BLOB_UNKNOWN')
    assert.equal((await fetch(`${h.url}/v2/team/app/manifests/v1`, { signal: AbortSignal.timeout(5000) })).status >= 400, true)
  })

  test('a blob whose bytes do not match its digest is refused and not kept', async () => {
    const wrong = Buffer.from(layer)
    wrong[1000] = (wrong[1000] ?? 0) ^ 0xff
    const res = await upload(wrong, digestOf(layer))
    assert.equal(res.status, 400)
    assert.equal(ociCode(await res.text()), 'DIGEST_INVALID')
    assert.equal(await h.store.stat(digestOf(layer)), undefined)
  })

  test('blobs, then the manifest by tag: the tag resolves and every byte reads back', async () => {
    for (const b of [config, layer]) {
      const res = await upload(b, digestOf(b))
      assert.equal(res.status, 201, await res.text())
      assert.equal(res.headers.get('docker-content-digest'), digestOf(b))
    }
    // A blob sent whole with POST ?digest= (no session) is accepted too, and one already held is not written twice.
    const again = await fetch(`${h.url}/v2/team/app/blobs/uploads/?digest=${digestOf(config)}`, { method: 'POST', body: config, signal: AbortSignal.timeout(5000) })
    assert.equal(again.status, 201)
    const put = await fetch(`${h.url}/v2/team/app/manifests/v1`, { method: 'PUT', body: manifest, headers: { 'content-type': OCI_MANIFEST }, signal: AbortSignal.timeout(5000) })
    assert.equal(put.status, 201, await put.text())
    assert.equal(put.headers.get('docker-content-digest'), digestOf(manifest))
    const got = await fetch(`${h.url}/v2/team/app/manifests/v1`, { headers: { accept: OCI_MANIFEST }, signal: AbortSignal.timeout(5000) })
    assert.equal(got.status, 200)
    assert.equal(got.headers.get('docker-content-digest'), digestOf(manifest))
    assert.ok(Buffer.from(await got.arrayBuffer()).equals(manifest))
    const blob = await fetch(`${h.url}/v2/team/app/blobs/${digestOf(layer)}`, { signal: AbortSignal.timeout(5000) })
    assert.equal(digestOf(Buffer.from(await blob.arrayBuffer())), digestOf(layer))
  })

  test('a manifest PUT by digest must be that digest', async () => {
    const res = await fetch(`${h.url}/v2/team/app/manifests/sha256:${'0'.repeat(64)}`, { method: 'PUT', body: manifest, headers: { 'content-type': OCI_MANIFEST }, signal: AbortSignal.timeout(5000) })
    assert.equal(res.status, 400)
    assert.equal(ociCode(await res.text()), 'DIGEST_INVALID')
  })

  test('chunked uploads and unknown sessions get clear errors', async () => {
    const patch = await rawRequest('127.0.0.1', h.port, '/v2/team/app/blobs/uploads/x', { method: 'PATCH', headers: { 'content-length': '0' } })
    assert.equal(patch.status, 405)
    assert.equal(ociCode(patch.body), 'UNSUPPORTED')
    const unknown = await rawRequest('127.0.0.1', h.port, `/v2/team/app/blobs/uploads/nope?digest=${digestOf(config)}`, { method: 'PUT', headers: { 'content-length': '0' } })
    assert.equal(unknown.status, 404)
    assert.equal(ociCode(unknown.body), 'BLOB_UPLOAD_UNKNOWN')
  })

  test('a client from another address may not push; a peer with the cluster\'s credentials may', { skip: outside === undefined ? 'this machine has no non-loopback IPv4 address' : false }, async () => {
    const r = await rawRequest(outside as string, h.port, '/v2/team/app/blobs/uploads/', { method: 'POST', headers: { 'content-length': '0' } })
    assert.equal(r.status, 403)
    assert.equal(ociCode(r.body), 'DENIED')
    // The peer policy is what checks credentials (HttpPeerPolicy): here it admits requests carrying the header as peers.
    const peers = await startHandlerServer(blobOnlyUpstream(async () => { throw new Error('unused') }), {
      host: '0.0.0.0',
      peerPolicy: { admit: (req) => req.headers['x-flotilla-peer'] === 'signed' ? { kind: 'peer', mode: 'local' } : { kind: 'client' }, enterOwnedBlob: () => undefined },
    })
    try {
      const refused = await rawRequest(outside as string, peers.port, '/v2/team/app/blobs/uploads/', { method: 'POST', headers: { 'content-length': '0' } })
      assert.equal(refused.status, 403)
      const admitted = await rawRequest(outside as string, peers.port, '/v2/team/app/blobs/uploads/', { method: 'POST', headers: { 'content-length': '0', 'x-flotilla-peer': 'signed' } })
      assert.equal(admitted.status, 202, admitted.body)
    } finally {
      await peers.close()
    }
  })
})
