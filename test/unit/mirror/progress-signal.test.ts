import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { ProgressSignal } from '../../../src/mirror/progress-signal.js'

const tick = async (): Promise<void> => { await new Promise((resolve) => setImmediate(resolve)) }

void describe('ProgressSignal', () => {
  test('new bytes wake at once only the waiters they satisfy; the others once the turn is over', async () => {
    const s = new ProgressSignal()
    const woke: string[] = []
    const v = s.version
    void s.after(v, 100).then(() => woke.push('near'))
    void s.after(v, 1000).then(() => woke.push('far'))
    s.progressed(50)
    s.progressed(120)
    await Promise.resolve()
    await Promise.resolve()
    assert.deepEqual(woke, ['near'])
    await tick()
    assert.deepEqual(woke, ['near', 'far'])
  })

  test('any other change wakes every waiter; a change since the version taken returns at once', async () => {
    const s = new ProgressSignal()
    const woke: number[] = []
    const v = s.version
    void s.after(v, 1e9).then(() => woke.push(1))
    void s.after(v, 1e9).then(() => woke.push(2))
    s.changed()
    await Promise.resolve()
    await Promise.resolve()
    assert.deepEqual(woke.sort(), [1, 2])
    let isBack = false
    await s.after(v, 1e9).then(() => { isBack = true })
    assert.equal(isBack, true)
  })
})
