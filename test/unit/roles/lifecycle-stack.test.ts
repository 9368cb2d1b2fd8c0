import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { pino } from 'pino'
import { LifecycleStack } from '../../../src/roles/lifecycle-stack.js'

const logger = pino({ level: 'silent' })

void describe('LifecycleStack', () => {
  void test('closes what was started in reverse order, once', async () => {
    const stopped: string[] = []
    const stack = new LifecycleStack(logger)
    stack.defer(() => { stopped.push('lock') })
    const server = stack.use({ close: async () => { stopped.push('server') } })
    stack.use({ close: () => { stopped.push('listener') } })
    assert.equal(typeof server.close, 'function', 'use returns what it was given')
    await Promise.all([stack.close(), stack.close()])
    await stack.close()
    assert.deepEqual(stopped, ['listener', 'server', 'lock'])
  })

  void test('a start that fails closes what was started before it, and the error goes on', async () => {
    const stopped: string[] = []
    const failure = new Error('bad metricsListen')
    await assert.rejects(LifecycleStack.start(logger, async (stack) => {
      stack.defer(() => { stopped.push('lock') })
      stack.use({ close: () => { stopped.push('upstream') } })
      throw failure
    }), (err) => err === failure)
    assert.deepEqual(stopped, ['upstream', 'lock'])
  })

  void test('a stop that fails is logged and the rest still stop', async () => {
    const warnings: unknown[] = []
    const stopped: string[] = []
    const stack = new LifecycleStack({ warn: (obj: unknown) => { warnings.push(obj) } } as unknown as pino.Logger)
    stack.defer(() => { stopped.push('lock') })
    stack.defer(() => { throw new Error('close failed') })
    stack.defer(async () => { stopped.push('server') })
    await stack.close()
    assert.deepEqual(stopped, ['server', 'lock'])
    assert.equal(warnings.length, 1)
  })

  void test('a role started on it is not stopped while it runs', async () => {
    let isStopped = false
    const started = await LifecycleStack.start(logger, async (stack) => {
      stack.defer(() => { isStopped = true })
      return { close: async () => { await stack.close() } }
    })
    assert.equal(isStopped, false)
    await started.close()
    assert.equal(isStopped, true)
  })
})
