// Kubernetes label keys and values, the `--node-labels k=v,...` parser and matchLabels semantics.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { isLabelKey, isLabelValue, matchesLabels, parseLabelList } from '../../../src/kube/labels.js'

const NAME_63 = 'a'.repeat(63)
const PREFIX_253 = `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(61)}`

const KEYS: Array<[string, boolean]> = [
  ['app', true],
  ['topology.kubernetes.io/zone', true],
  ['node-role.kubernetes.io/worker', true],
  ['flotilla.dev/precache', true],
  ['A_b.c-D', true],
  ['a', true],
  [NAME_63, true],
  [`${PREFIX_253}/x`, true],
  ['', false],
  ['a'.repeat(64), false],
  [`${PREFIX_253}e/x`, false],
  ['/app', false],
  ['example.com/', false],
  ['Example.com/app', false],
  ['example_com/app', false],
  ['a/b/c', false],
  ['-app', false],
  ['app-', false],
  ['.app', false],
  ['app name', false],
  ['app=x', false],
  ['__proto__', false],
]

const VALUES: Array<[string, boolean]> = [
  ['', true],
  ['web', true],
  ['eu-west-1a', true],
  ['1.28.2', true],
  ['A_b.c-D', true],
  [NAME_63, true],
  ['a'.repeat(64), false],
  ['-web', false],
  ['web.', false],
  ['web,db', false],
  ['a/b', false],
  ['eu west', false],
  ['é', false],
]

for (const [key, isValid] of KEYS) {
  void test(`isLabelKey(${JSON.stringify(key.length > 40 ? `${key.slice(0, 20)}…(${key.length})` : key)}) is ${isValid}`, () => {
    assert.equal(isLabelKey(key), isValid)
  })
}

for (const [value, isValid] of VALUES) {
  void test(`isLabelValue(${JSON.stringify(value.length > 40 ? `${value.slice(0, 20)}…(${value.length})` : value)}) is ${isValid}`, () => {
    assert.equal(isLabelValue(value), isValid)
  })
}

const LISTS: Array<[string, Record<string, string>]> = [
  ['', {}],
  ['   ', {}],
  ['app=web', { app: 'web' }],
  ['app=web,tier=front', { app: 'web', tier: 'front' }],
  [' app=web , tier=front ', { app: 'web', tier: 'front' }],
  ['node-role.kubernetes.io/worker=', { 'node-role.kubernetes.io/worker': '' }],
  ['topology.kubernetes.io/zone=eu-west-1a,flotilla.dev/precache=web', { 'topology.kubernetes.io/zone': 'eu-west-1a', 'flotilla.dev/precache': 'web' }],
]

for (const [text, expected] of LISTS) {
  void test(`parseLabelList(${JSON.stringify(text)})`, () => {
    assert.deepEqual(parseLabelList(text), expected)
  })
}

const BAD_LISTS: Array<[string, RegExp]> = [
  ['app', /label "app" in "app": not key=value$/],
  ['app=web,', /label "" in "app=web,": not key=value$/],
  ['app=web,,tier=x', /label "" in .*not key=value$/],
  ['=web', /label "=web" .*not a valid label key/],
  ['App Name=web', /label "App Name=web" .*not a valid label key/],
  ['app=web=x', /label "app=web=x" .*not a valid label value/],
  ['app=-web', /label "app=-web" .*not a valid label value/],
  [`app=${'a'.repeat(64)}`, /not a valid label value/],
  ['app=web,app=db', /label "app=db" .*app is given twice$/],
  ['app=web\nevil=x', /^label "app=web\\nevil=x" in "app=web\\nevil=x": the value is not a valid label value/],
]

for (const [text, message] of BAD_LISTS) {
  void test(`parseLabelList(${JSON.stringify(text.length > 40 ? `${text.slice(0, 20)}…` : text)}) throws a one-line TypeError naming the entry`, () => {
    assert.throws(() => parseLabelList(text), (err: unknown) => {
      assert.ok(err instanceof TypeError)
      assert.match(err.message, message)
      assert.doesNotMatch(err.message, /\n/)
      return true
    })
  })
}

const NODE = { 'kubernetes.io/hostname': 'node-a', 'topology.kubernetes.io/zone': 'eu-west-1a', 'node-role.kubernetes.io/worker': '' }
const MATCHES: Array<[string, Record<string, string>, Record<string, string>, boolean]> = [
  ['an empty selector matches any node', {}, NODE, true],
  ['an empty selector matches a node without labels', {}, {}, true],
  ['one equal pair', { 'topology.kubernetes.io/zone': 'eu-west-1a' }, NODE, true],
  ['every pair equal', { 'topology.kubernetes.io/zone': 'eu-west-1a', 'kubernetes.io/hostname': 'node-a' }, NODE, true],
  ['one pair differs', { 'topology.kubernetes.io/zone': 'eu-west-1a', 'kubernetes.io/hostname': 'node-b' }, NODE, false],
  ['a label the node lacks', { app: 'web' }, NODE, false],
  ['an empty value matches a label set to empty', { 'node-role.kubernetes.io/worker': '' }, NODE, true],
  ['an empty value does not match a missing label', { 'node-role.kubernetes.io/control-plane': '' }, NODE, false],
  ['values compare exactly (case)', { 'topology.kubernetes.io/zone': 'EU-WEST-1A' }, NODE, false],
  ['inherited properties are not labels', { constructor: '' }, {}, false],
]

for (const [what, selector, labels, expected] of MATCHES) {
  void test(`matchesLabels: ${what}`, () => {
    assert.equal(matchesLabels(selector, labels), expected)
  })
}
