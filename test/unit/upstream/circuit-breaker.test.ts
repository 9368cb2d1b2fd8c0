import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { CircuitBreaker, type CircuitState } from '../../../src/upstream/circuit-breaker.js'

function breakerWithClock (failureThreshold = 3, openMs = 1000): { breaker: CircuitBreaker, advance: (ms: number) => void, changes: string[] } {
  let now = 0
  const changes: string[] = []
  const breaker = new CircuitBreaker({
    failureThreshold,
    openMs,
    now: () => now,
    onStateChange: (from: CircuitState, to: CircuitState) => changes.push(`${from}->${to}`),
  })
  return { breaker, advance: (ms) => { now += ms }, changes }
}

void describe('CircuitBreaker', () => {
  void test('opens after N consecutive failures, not after N failures with a success between', () => {
    const { breaker } = breakerWithClock(3)
    breaker.recordFailure()
    breaker.recordFailure()
    breaker.recordSuccess()
    breaker.recordFailure()
    breaker.recordFailure()
    assert.equal(breaker.state, 'closed')
    assert.equal(breaker.tryAcquire(), true)
    breaker.recordFailure()
    assert.equal(breaker.state, 'open')
    assert.equal(breaker.tryAcquire(), false)
  })

  void test('half-open after openMs admits exactly one trial; its success closes the circuit', () => {
    const { breaker, advance, changes } = breakerWithClock(1, 1000)
    breaker.recordFailure()
    advance(999)
    assert.equal(breaker.tryAcquire(), false)
    advance(1)
    assert.equal(breaker.state, 'half-open')
    assert.equal(breaker.tryAcquire(), true)
    assert.equal(breaker.tryAcquire(), false, 'a second caller waits for the trial')
    breaker.recordSuccess()
    assert.equal(breaker.state, 'closed')
    assert.equal(breaker.tryAcquire(), true)
    assert.deepEqual(changes, ['closed->open', 'open->half-open', 'half-open->closed'])
  })

  void test('a failed trial reopens for another full openMs', () => {
    const { breaker, advance } = breakerWithClock(1, 1000)
    breaker.recordFailure()
    advance(1000)
    assert.equal(breaker.tryAcquire(), true)
    breaker.recordFailure()
    assert.equal(breaker.state, 'open')
    advance(999)
    assert.equal(breaker.tryAcquire(), false)
    advance(1)
    assert.equal(breaker.tryAcquire(), true)
  })

  void test('a released trial (caller aborted) lets the next caller try', () => {
    const { breaker, advance } = breakerWithClock(1, 10)
    breaker.recordFailure()
    advance(10)
    assert.equal(breaker.tryAcquire(), true)
    breaker.release()
    assert.equal(breaker.state, 'half-open')
    assert.equal(breaker.tryAcquire(), true)
  })

  void test('rejects bad options with TypeError', () => {
    assert.throws(() => new CircuitBreaker({ failureThreshold: 0 }), TypeError)
    assert.throws(() => new CircuitBreaker({ failureThreshold: 1.5 }), TypeError)
    assert.throws(() => new CircuitBreaker({ openMs: -1 }), TypeError)
  })

  void test('lastFailure: the last error recorded with its message and time; failures without one keep it', () => {
    const { breaker, advance } = breakerWithClock()
    assert.equal(breaker.lastFailure, undefined)
    advance(5)
    breaker.recordFailure(new Error('connect ECONNREFUSED'))
    assert.deepEqual(breaker.lastFailure, { message: 'connect ECONNREFUSED', at: 5 })
    advance(5)
    breaker.recordFailure()
    breaker.recordSuccess()
    assert.deepEqual(breaker.lastFailure, { message: 'connect ECONNREFUSED', at: 5 }, 'the last error stays known after recovery')
  })
})
