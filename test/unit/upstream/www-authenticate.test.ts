import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { parseWwwAuthenticate, type AuthChallenge } from '../../../src/upstream/www-authenticate.js'

const cases: Array<[string, string | string[] | undefined, AuthChallenge[]]> = [
  ['docker hub bearer', 'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull"', [
    { scheme: 'bearer', params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/alpine:pull' } },
  ]],
  ['basic with spaces and unquoted value', 'Basic  realm = Registry , charset="UTF-8"', [
    { scheme: 'basic', params: { realm: 'Registry', charset: 'UTF-8' } },
  ]],
  ['two challenges in one header', 'Basic realm="a", Bearer realm="https://t/x",service="s"', [
    { scheme: 'basic', params: { realm: 'a' } },
    { scheme: 'bearer', params: { realm: 'https://t/x', service: 's' } },
  ]],
  ['two headers', ['Negotiate abc==', 'Bearer realm="r"'], [
    { scheme: 'negotiate', params: {} },
    { scheme: 'bearer', params: { realm: 'r' } },
  ]],
  ['escaped quote and comma inside a quoted value', 'Bearer realm="a\\"b,c",error="insufficient_scope"', [
    { scheme: 'bearer', params: { realm: 'a"b,c', error: 'insufficient_scope' } },
  ]],
  ['parameter names are case-insensitive', 'BEARER Realm="r" , Service="s"', [
    { scheme: 'bearer', params: { realm: 'r', service: 's' } },
  ]],
  ['absent', undefined, []],
  ['empty', '', []],
  ['garbage', '"""', []],
]

void describe('parseWwwAuthenticate', () => {
  for (const [name, header, expected] of cases) {
    void test(name, () => assert.deepEqual(parseWwwAuthenticate(header), expected))
  }
})
