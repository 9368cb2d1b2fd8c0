import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { pino } from 'pino'
import { UndiciUpstream, type UndiciUpstreamOptions } from '../../../src/upstream/undici-upstream.js'

const logger = pino({ level: 'silent' })
const registries = new Map([['docker.io', { endpoint: 'https://registry-1.docker.io' }]])

void describe('UndiciUpstream options', () => {
  const bad: Array<[string, Partial<UndiciUpstreamOptions>]> = [
    ['registries not a Map', { registries: { 'docker.io': { endpoint: 'x' } } as never }],
    ['endpoint not a URL', { registries: new Map([['r', { endpoint: 'not a url' }]]) }],
    ['endpoint not http', { registries: new Map([['r', { endpoint: 'ftp://r' }]]) }],
    ['endpoint with a query', { registries: new Map([['r', { endpoint: 'https://r/?x=1' }]]) }],
    ['endpoint with credentials', { registries: new Map([['r', { endpoint: 'https://u:p@r' }]]) }],
    ['negative retries', { retries: -1 }],
    ['fractional retries', { retries: 1.5 }],
    ['zero connect timeout', { connectTimeoutMs: 0 }],
    ['NaN headers timeout', { headersTimeoutMs: Number.NaN }],
    ['negative retry base', { retryBaseMs: -1 }],
    ['negative retry-after cap', { maxRetryAfterMs: -1 }],
    ['bad breaker', { breaker: { failureThreshold: 0 } }],
    ['no logger', { logger: undefined as never }],
  ]
  for (const [name, override] of bad) {
    void test(`TypeError: ${name}`, () => {
      assert.throws(() => new UndiciUpstream({ registries, logger, ...override }), TypeError)
    })
  }

  void test('valid options build, and close() resolves', async () => {
    const upstream = new UndiciUpstream({ registries, logger })
    assert.equal(upstream.has('docker.io'), true)
    await upstream.close()
  })
})
