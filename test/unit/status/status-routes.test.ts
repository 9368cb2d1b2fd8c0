// /status and /status.json follow /metrics' rule: this host only on the API listener, anyone on the
// metricsListen server; HTML with its CSP and no caching, JSON that validates.
import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { networkInterfaces } from 'node:os'
import { after, before, describe, test } from 'node:test'
import { pino } from 'pino'
import { Metrics } from '../../../src/metrics/metrics.js'
import { Mirror } from '../../../src/mirror/mirror.js'
import { createObservabilityHandler } from '../../../src/server/observability-handler.js'
import { createRegistryHandler } from '../../../src/server/registry-handler.js'
import { nodeStatusSchema } from '../../../src/status/node-status-schema.js'
import { MemoryBlobStore } from '../../../src/store/memory-blob-store.js'
import { MemoryTagIndex } from '../../../src/store/memory-tag-index.js'
import { blobOnlyUpstream } from '../../helpers/blob-only-upstream.js'
import { ociCode, rawRequest } from '../server/raw-request.js'
import { fullStatus } from './node-status-fixture.js'

const outside = Object.values(networkInterfaces()).flat().find((a) => a !== undefined && !a.internal && a.family === 'IPv4')?.address

async function listen (server: Server, host: string): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, host, resolve))
  return (server.address() as AddressInfo).port
}

async function close (server: Server | undefined): Promise<void> {
  if (server === undefined) return
  server.closeAllConnections()
  await new Promise<void>((resolve) => server.close(() => resolve()))
}

void describe('/status and /status.json', () => {
  const logger = pino({ level: 'silent' })
  const metrics = new Metrics({ defaultMetrics: false })
  const nodeStatus = async (): Promise<ReturnType<typeof fullStatus>> => fullStatus()
  let api: Server | undefined
  let apiPort = 0
  let scrape: Server | undefined
  let scrapePort = 0

  before(async () => {
    const mirror = new Mirror({ store: new MemoryBlobStore(), tags: new MemoryTagIndex(), upstream: blobOnlyUpstream(async () => { throw new Error('unused') }), tagTtlMs: () => 60_000, metrics, logger })
    api = createServer(createRegistryHandler({ mirror, metrics, logger, defaultRegistry: 'registry.test', registries: new Set(['registry.test']), isReady: () => true, nodeStatus }))
    apiPort = await listen(api, '0.0.0.0')
    scrape = createServer(createObservabilityHandler({ metrics, isReady: () => true, logger, nodeStatus }))
    scrapePort = await listen(scrape, '0.0.0.0')
  })
  after(async () => {
    await close(api)
    await close(scrape)
  })

  test('this host gets the JSON (valid) and the HTML (with its CSP, not cached) on the API listener', async () => {
    const json = await rawRequest('127.0.0.1', apiPort, '/status.json')
    assert.equal(json.status, 200)
    assert.match(json.head, /^content-type: application\/json/im)
    assert.ok(nodeStatusSchema.safeParse(JSON.parse(json.body)).success)
    const html = await rawRequest('127.0.0.1', apiPort, '/status')
    assert.equal(html.status, 200)
    assert.match(html.head, /^content-type: text\/html; charset=utf-8/im)
    assert.match(html.head, /^content-security-policy: default-src 'none'/im)
    assert.match(html.head, /^cache-control: no-store/im)
    assert.match(html.body, /<section id="downloads">/)
  })

  test('another host gets 404 NAME_UNKNOWN on the API listener, like /metrics', { skip: outside === undefined ? 'no non-loopback IPv4 address' : false }, async () => {
    for (const path of ['/status', '/status.json']) {
      const r = await rawRequest(outside as string, apiPort, path)
      assert.equal(r.status, 404, path)
      assert.equal(ociCode(r.body), 'NAME_UNKNOWN')
      assert.doesNotMatch(r.body, /10\.0\.0\.1/)
    }
  })

  test('anyone who reaches the metricsListen server gets both', async () => {
    const host = outside ?? '127.0.0.1'
    assert.equal((await rawRequest(host, scrapePort, '/status.json')).status, 200)
    const html = await rawRequest(host, scrapePort, '/status')
    assert.equal(html.status, 200)
    assert.match(html.body, /^<!doctype html>/)
    assert.equal((await rawRequest(host, scrapePort, '/status', { method: 'HEAD' })).body, '')
  })
})
