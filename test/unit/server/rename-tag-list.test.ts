import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { renameTagList } from '../../../src/server/rename-tag-list.js'

const json = (v: unknown): Buffer => Buffer.from(JSON.stringify(v))

describe('renameTagList (defect 4)', () => {
  test('the name becomes the one asked for; other fields and their order stay', () => {
    const r = renameTagList({ headers: {}, body: json({ name: 'library/busybox', tags: ['1', '2'], extra: true }) }, { name: 'busybox', rawPathname: '/v2/busybox/tags/list' })
    assert.equal(r.body.toString(), JSON.stringify({ name: 'busybox', tags: ['1', '2'], extra: true }))
  })
  test('a next-page link points at the client\'s path, keeping its query and the client\'s ns', () => {
    const r = renameTagList({ headers: { link: '</v2/team/app/tags/list?n=1&last=a>; rel="next"', 'content-type': 'application/json' }, body: json({ name: 'team/app', tags: [] }) },
      { name: 'app', rawPathname: '/v2/app/tags/list', ns: 'ghcr.io' })
    assert.deepEqual(r.headers, { link: '</v2/app/tags/list?n=1&last=a&ns=ghcr.io>; rel="next"', 'content-type': 'application/json' })
  })
  const untouched: Array<[string, Buffer]> = [
    ['not JSON', Buffer.from('<html>')], ['an array', json(['x'])], ['no name', json({ tags: [] })], ['a numeric name', json({ name: 1 })], ['null', json(null)],
  ]
  for (const [what, body] of untouched) {
    test(`${what}: the body is passed on as it is`, () => assert.equal(renameTagList({ headers: {}, body }, { name: 'x', rawPathname: '/v2/x/tags/list' }).body, body))
  }
  test('a link to anything but a tag list is left alone', () => {
    const headers = { link: '<https://example.com/docs>; rel="help"' }
    assert.equal(renameTagList({ headers, body: json({}) }, { name: 'x', rawPathname: '/v2/x/tags/list' }).headers, headers)
  })
})
