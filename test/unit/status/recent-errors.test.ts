// RecentErrors: a bounded ring, newest first, fed by a tapped logger (what sendError logs for 5xx answers).
import assert from 'node:assert/strict'
import { Writable } from 'node:stream'
import { describe, test } from 'node:test'
import { pino } from 'pino'
import { packageVersion } from '../../../src/status/package-version.js'
import { RecentErrors } from '../../../src/status/recent-errors.js'

void describe('RecentErrors', () => {
  void test('keeps the last `limit` errors, newest first, with their time', () => {
    let t = Date.parse('2026-05-01T12:00:00.000Z')
    const errors = new RecentErrors({ limit: 3, now: () => t })
    for (let i = 1; i <= 5; i++) {
      errors.record(`e${i}`)
      t += 1000
    }
    assert.deepEqual(errors.list().map((e) => e.message), ['e5', 'e4', 'e3'])
    assert.equal(errors.list()[0]?.at, '2026-05-01T12:00:04.000Z')
  })

  void test('a limit that is not a positive integer is refused', () => {
    assert.throws(() => new RecentErrors({ limit: 0 }), TypeError)
    assert.throws(() => new RecentErrors({ limit: 1.5 }), TypeError)
  })

  void test('a tapped logger records its warnings and errors (message, code, err) and still logs them', () => {
    const lines: string[] = []
    const sink = new Writable({ write (chunk: Buffer, _enc, cb) { lines.push(chunk.toString()); cb() } })
    const errors = new RecentErrors()
    const logger = errors.tap(pino({ level: 'info' }, sink))
    logger.info('not an error')
    logger.warn({ code: 'UNAVAILABLE', err: 'upstream down' }, 'request failed')
    logger.error({ err: new Error('boom'), requestId: 'r1' }, 'unexpected error')
    logger.warn('plain warning')
    assert.deepEqual(errors.list().map((e) => e.message), ['plain warning', 'unexpected error: boom', 'request failed: UNAVAILABLE upstream down'])
    assert.equal(lines.length, 4, 'everything is still logged')
  })
})

void describe('packageVersion', () => {
  void test("flotilla's version from its package.json, found upwards", () => {
    assert.match(packageVersion(), /^\d+\.\d+\.\d+/)
    assert.equal(packageVersion('file:///nonexistent/a/b/c.js'), 'unknown')
  })
})
