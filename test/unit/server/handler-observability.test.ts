// Defect 12 (issue 8): /metrics on the API listener answers this host only; probes stay open to all; the
// metricsListen server serves the three and nothing else.
import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { networkInterfaces } from 'node:os'
import { after, before, describe, test } from 'node:test'
import { pino } from 'pino'
import { Metrics } from '../../../src/metrics/metrics.js'
import { createObservabilityHandler } from '../../../src/server/observability-handler.js'
import { blobOnlyUpstream } from '../../helpers/blob-only-upstream.js'
import { startHandlerServer, type HandlerServer } from './handler-server.js'
import { ociCode, rawRequest } from './raw-request.js'

/** An address of this machine that is not loopback, if it has one: requests to it come from it, not from 127/8. */
const outside = Object.values(networkInterfaces()).flat().find((a) => a !== undefined && !a.internal && a.family === 'IPv4')?.address

void describe('defect 12: who may read /metrics', () => {
  let h: HandlerServer
  before(async () => {
    h = await startHandlerServer(blobOnlyUpstream(async () => { throw new Error('unused') }), { host: '0.0.0.0' })
  })
  after(async () => { await h?.close() })

  test('defect 12: loopback clients get /metrics, /healthz and /readyz on the API listener', async () => {
    const m = await rawRequest('127.0.0.1', h.port, '/metrics')
    assert.equal(m.status, 200)
    assert.match(m.body, /flotilla_requests_total/)
    assert.equal((await rawRequest('127.0.0.1', h.port, '/healthz')).status, 200)
    assert.equal((await rawRequest('127.0.0.1', h.port, '/readyz')).status, 200)
  })

  test('defect 12: a client from another address gets 404 NAME_UNKNOWN for /metrics, the probes still answer', { skip: outside === undefined ? 'this machine has no non-loopback IPv4 address' : false }, async () => {
    const m = await rawRequest(outside as string, h.port, '/metrics')
    assert.equal(m.status, 404)
    assert.equal(ociCode(m.body), 'NAME_UNKNOWN')
    assert.doesNotMatch(m.body, /flotilla_/)
    assert.equal((await rawRequest(outside as string, h.port, '/healthz')).status, 200)
    assert.equal((await rawRequest(outside as string, h.port, '/readyz')).status, 200)
  })
})

void describe('defect 12: the metricsListen server', () => {
  let server: Server
  let port: number
  before(async () => {
    const metrics = new Metrics({ defaultMetrics: false })
    server = createServer(createObservabilityHandler({ metrics, isReady: () => false, logger: pino({ level: 'silent' }) }))
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    port = (server.address() as AddressInfo).port
  })
  after(async () => {
    server.closeAllConnections()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  })

  test('serves /metrics, /healthz and /readyz', async () => {
    const m = await rawRequest('127.0.0.1', port, '/metrics')
    assert.equal(m.status, 200)
    assert.match(m.body, /flotilla_requests_total/)
    assert.equal((await rawRequest('127.0.0.1', port, '/healthz')).status, 200)
    assert.equal((await rawRequest('127.0.0.1', port, '/readyz')).status, 503, 'not ready is said here too')
  })
  const refused: Array<[string, number, string]> = [['/v2/', 404, 'NAME_UNKNOWN'], ['/status', 404, 'NAME_UNKNOWN'], ['//%', 400, 'NAME_INVALID'], ['/metrics/../v2/', 400, 'NAME_INVALID']]
  for (const [target, status, code] of refused) {
    test(`${target} → ${status} ${code}`, async () => {
      const r = await rawRequest('127.0.0.1', port, target)
      assert.equal(r.status, status)
      assert.equal(ociCode(r.body), code)
    })
  }
  test('POST /metrics → 405 UNSUPPORTED', async () => {
    const r = await rawRequest('127.0.0.1', port, '/metrics', { method: 'POST', headers: { 'content-length': '0' } })
    assert.equal(r.status, 405)
    assert.equal(ociCode(r.body), 'UNSUPPORTED')
  })
})
