// The route table: the first matching route answers, what it throws is OCI JSON, only counted routes are counted.
import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, before, describe, test } from 'node:test'
import { pino } from 'pino'
import { Metrics } from '../../../src/metrics/metrics.js'
import { OciError } from '../../../src/oci/index.js'
import type { Route } from '../../../src/server/route.js'
import { createRouteHandler } from '../../../src/server/route-handler.js'
import { ociCode, rawRequest } from './raw-request.js'

void describe('createRouteHandler', () => {
  const metrics = new Metrics({ defaultMetrics: false })
  let server: Server
  let port: number
  const routes: Route[] = [
    {
      isCounted: false,
      matches: ({ pathname }) => pathname === '/status',
      serve: async ({ res, method }) => { res.writeHead(200, { 'content-length': '3' }).end(method === 'HEAD' ? undefined : 'up\n') },
    },
    {
      isCounted: true,
      matches: ({ pathname }) => pathname.startsWith('/counted/'),
      serve: async ({ target }, tally) => {
        tally.kind = 'blob'
        tally.registry = 'registry.test'
        if (target.pathname === '/counted/missing') throw new OciError('BLOB_UNKNOWN', 'no such blob')
        throw new Error('boom')
      },
    },
  ]
  before(async () => {
    server = createServer(createRouteHandler(routes, { metrics, logger: pino({ level: 'silent' }) }))
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    port = (server.address() as AddressInfo).port
  })
  after(async () => {
    server.closeAllConnections()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  })

  async function counted (): Promise<Array<Record<string, string | number>>> {
    return (await metrics.requests.get()).values.map((v) => ({ ...v.labels, value: v.value }))
  }

  const cases: Array<[string, number, string | undefined]> = [
    ['/status', 200, undefined],
    ['/counted/missing', 404, 'BLOB_UNKNOWN'],
    ['/counted/broken', 500, 'UNKNOWN'],
    ['/elsewhere', 404, 'NAME_UNKNOWN'],
    ['/a/../status', 400, 'NAME_INVALID'],
  ]
  for (const [target, status, code] of cases) {
    test(`${target} answers ${status}${code === undefined ? '' : ` ${code}`}`, async () => {
      const r = await rawRequest('127.0.0.1', port, target)
      assert.equal(r.status, status)
      if (code !== undefined) assert.equal(ociCode(r.body), code)
    })
  }

  test('only the counted route is counted, with what it learned before it failed', async () => {
    assert.deepEqual(await counted(), [
      { registry: 'registry.test', kind: 'blob', result: 'miss', value: 1 },
      { registry: 'registry.test', kind: 'blob', result: 'error', value: 1 },
    ])
  })
})
