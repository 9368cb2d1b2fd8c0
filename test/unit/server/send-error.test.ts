// sendError on a response already under way: the response is cut either way; a client that went away is
// logged at debug, a failure of ours (the source broke) at warn.
import assert from 'node:assert/strict'
import type { ServerResponse } from 'node:http'
import { Writable } from 'node:stream'
import { test } from 'node:test'
import { pino } from 'pino'
import { sendError } from '../../../src/server/send-error.js'
import { UpstreamError } from '../../../src/upstream/upstream-error.js'

function capture (): { logger: pino.Logger, lines: Array<{ level: number, msg: string }> } {
  const lines: Array<{ level: number, msg: string }> = []
  const sink = new Writable({ write (chunk: Buffer, _enc, done) { lines.push(JSON.parse(chunk.toString()) as { level: number, msg: string }); done() } })
  return { logger: pino({ level: 'debug' }, sink), lines }
}

function midBody (): { res: ServerResponse, destroyed: unknown[] } {
  const destroyed: unknown[] = []
  return { res: { headersSent: true, destroy: (err: unknown) => { destroyed.push(err) } } as unknown as ServerResponse, destroyed }
}

void test('a client that went away mid-body: the response is destroyed, logged at debug', async () => {
  const { logger, lines } = capture()
  const { res, destroyed } = midBody()
  const gone = Object.assign(new Error('destination closed before the last byte'), { code: 'ERR_STREAM_PREMATURE_CLOSE' })
  sendError(res, gone, 'blob', false, logger)
  await new Promise((resolve) => setImmediate(resolve))
  assert.deepEqual(destroyed, [gone])
  assert.deepEqual(lines.map((l) => [l.level, l.msg]), [[20, 'client went away mid-body']])
})

void test('our source failing mid-body: the response is destroyed, logged at warn', async () => {
  const { logger, lines } = capture()
  const { res, destroyed } = midBody()
  const broke = new UpstreamError('ERR_UPSTREAM_UNAVAILABLE', 'upstream reset the connection', 'r.example')
  sendError(res, broke, 'blob', false, logger)
  await new Promise((resolve) => setImmediate(resolve))
  assert.deepEqual(destroyed, [broke])
  assert.deepEqual(lines.map((l) => [l.level, l.msg]), [[40, 'response aborted mid-body']])
})
