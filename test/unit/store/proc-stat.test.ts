import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { parseProcStat, readProcStat } from '../../../src/store/proc-stat.js'

/** Fields 4..52 of a real line (after the state), starttime (field 22) set to 24976. */
const TAIL = '8544 8544 5128 0 -1 4194304 97 0 0 0 0 0 0 0 20 0 1 0 24976 3133440 381 18446744073709551615 94525555879936 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0 0 0 0 0 0 0 0 0'

describe('parseProcStat', () => {
  const cases: Array<[string, string, ReturnType<typeof parseProcStat>]> = [
    ['a running process', `8546 (cat) R ${TAIL}\n`, { pid: 8546, state: 'R', startTime: 24976 }],
    ['a zombie (killed, not reaped yet)', `9855 (node) Z ${TAIL}`, { pid: 9855, state: 'Z', startTime: 24976 }],
    ['a dead process', `9855 (node) X ${TAIL}`, { pid: 9855, state: 'X', startTime: 24976 }],
    ['a comm with spaces and ") " inside', `77 (a) Z (b c) S ${TAIL}`, { pid: 77, state: 'S', startTime: 24976 }],
    ['a comm that is only ")"', `78 ()) D ${TAIL}`, { pid: 78, state: 'D', startTime: 24976 }],
    ['a comm ending in " 1 2"', `79 (x) R 1 2) S ${TAIL}`, { pid: 79, state: 'S', startTime: 24976 }],
    ['a line cut before field 22', `80 (cut) S ${TAIL.split(' ').slice(0, 18).join(' ')}`, undefined],
    ['no comm', `81 S ${TAIL}`, undefined],
    ['no pid', `(x) S ${TAIL}`, undefined],
    ['an empty line', '', undefined],
  ]
  for (const [name, line, expected] of cases) {
    test(`defect 7: ${name}`, () => {
      assert.deepEqual(parseProcStat(line), expected)
    })
  }
})

describe('readProcStat', () => {
  test('reads our own process, and nothing for a pid that does not exist', async () => {
    const own = await readProcStat(process.pid)
    assert.equal(own?.pid, process.pid)
    assert.match(own?.state ?? '', /^[RSD]$/)
    // Two reads of a running process differ in its state (R, S) and counters: compare what identifies it.
    const self = await readProcStat('self')
    assert.equal(self?.pid, own?.pid)
    assert.equal(self?.startTime, own?.startTime)
    assert.equal(await readProcStat(2 ** 22 + 1), undefined)
  })
})
