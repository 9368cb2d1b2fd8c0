// What `flotilla precache status` prints for a status: the whole output for one realistic node, then each
// header line and each cell of an image row, case by case.
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { formatPrecacheStatus } from '../../../src/cli/precache-table.js'
import type { PrecacheImageStatus, PrecacheStatus } from '../../../src/precache/precache-status.js'

const NOW = new Date('2025-06-01T12:00:00.000Z')
const WEB = `sha256:${'3f4a5b6c7d8e'}${'0'.repeat(52)}`
const SIDECAR = `sha256:${'9a8b7c6d5e4f'}${'1'.repeat(52)}`

function secondsAgo (s: number): string {
  return new Date(NOW.getTime() - s * 1000).toISOString()
}

function image (patch: Partial<PrecacheImageStatus> = {}): PrecacheImageStatus {
  return {
    ref: 'registry.example.com/team/web:v1.4',
    digest: WEB,
    phase: 'Ready',
    pinned: true,
    lastConfirmed: secondsAgo(12),
    bytes: 12_345_678,
    error: null,
    ...patch,
  }
}

function status (patch: Partial<PrecacheStatus> = {}): PrecacheStatus {
  return {
    file: '/etc/flotilla/precache/sets.yaml',
    fileError: null,
    loadedAt: secondsAgo(180),
    mode: 'containerd',
    nodeLabels: { tier: 'edge', 'kubernetes.io/arch': 'amd64' },
    nodeLabelsError: null,
    pin: { honoured: true, containerdVersion: '1.7.13', note: null },
    sets: [{ name: 'web', matches: true, refreshSeconds: 600, images: [image()] }],
    ...patch,
  }
}

function lines (s: PrecacheStatus): string[] {
  return formatPrecacheStatus(s, NOW).split('\n')
}

/** The header line that starts with `label:`, without its label. */
function headerValue (s: PrecacheStatus, label: string): string | undefined {
  const line = lines(s).find((l) => l.startsWith(`${label}:`))
  return line?.slice(label.length + 1).trim()
}

/** The cells of the single image row, cut at the header's column starts. */
function rowCells (img: PrecacheImageStatus): Record<string, string> {
  const out = lines(status({ sets: [{ name: 'web', matches: true, refreshSeconds: 600, images: [img] }] }))
  const head = out.find((l) => l.startsWith('SET '))
  const row = out[out.indexOf(head ?? '') + 1]
  assert.ok(head !== undefined && row !== undefined, out.join('\n'))
  const names = head.split(/ +/)
  const starts = names.map((n) => head.indexOf(n))
  return Object.fromEntries(names.map((n, i) => [n, row.slice(starts[i], starts[i + 1]).trim()]))
}

void describe('formatPrecacheStatus', () => {
  void test('a node with a matching set, a failed image and a set elsewhere: the whole output', () => {
    const s = status({
      pin: { honoured: false, containerdVersion: '1.6.20', note: 'containerd before 1.6.25 ignores the pin' },
      sets: [
        {
          name: 'web',
          matches: true,
          refreshSeconds: 600,
          images: [
            image(),
            image({
              ref: `registry.example.com/team/sidecar@${SIDECAR}`,
              digest: SIDECAR,
              phase: 'Failed',
              pinned: false,
              lastConfirmed: null,
              bytes: null,
              error: 'pull failed: unexpected status 503',
            }),
          ],
        },
        { name: 'gpu-drivers', matches: false, refreshSeconds: 600, images: [] },
      ],
    })
    assert.equal(formatPrecacheStatus(s, NOW), [
      'file:        /etc/flotilla/precache/sets.yaml (loaded 3m ago)',
      "mode:        containerd (pulled through the node's CRI, pinned there)",
      'node labels: kubernetes.io/arch=amd64, tier=edge',
      'pin:         not honoured by containerd 1.6.20 (containerd before 1.6.25 ignores the pin)',
      '',
      'SET          IMAGE                                                   PHASE   PINNED  DIGEST        CONFIRMED  SIZE     ERROR',
      'web          registry.example.com/team/web:v1.4                      Ready   yes     3f4a5b6c7d8e  12s ago    12.3 MB  -',
      'web          registry.example.com/team/sidecar@sha256:9a8b7c6d5e4f…  Failed  no      9a8b7c6d5e4f  -          -        pull failed: unexpected status 503',
      'gpu-drivers  (not on this node)',
      '',
      '2 images on this node: 1 Ready, 1 Failed; 1 set not on this node',
      '',
    ].join('\n'))
  })

  const headers: Array<[string, Partial<PrecacheStatus>, string, string | undefined]> = [
    ['pin honoured, version known', { pin: { honoured: true, containerdVersion: '1.7.13', note: null } }, 'pin', 'honoured by containerd 1.7.13'],
    ['pin honoured, with a note', { pin: { honoured: true, containerdVersion: '2.0.1', note: 'the kubelet honours the pin from 1.28.2' } }, 'pin', 'honoured by containerd 2.0.1 (the kubelet honours the pin from 1.28.2)'],
    ['pin honoured in store mode', { mode: 'store', pin: { honoured: true, containerdVersion: null, note: null } }, 'pin', 'honoured'],
    ['pin not honoured, version and note', { pin: { honoured: false, containerdVersion: '1.7.2', note: 'ImageStatus reports no pin' } }, 'pin', 'not honoured by containerd 1.7.2 (ImageStatus reports no pin)'],
    ['pin not honoured, version unknown', { pin: { honoured: false, containerdVersion: null, note: null } }, 'pin', 'not honoured'],
    ['pin unknown', { pin: { honoured: null, containerdVersion: null, note: null } }, 'pin', 'unknown'],
    ['pin unknown for a version not understood', { pin: { honoured: null, containerdVersion: 'devel', note: 'version not understood' } }, 'pin', 'unknown (containerd devel; version not understood)'],
    ['pin unknown with a note', { pin: { honoured: null, containerdVersion: null, note: 'containerd not reached yet' } }, 'pin', 'unknown (containerd not reached yet)'],
    ['labels sorted by key', { nodeLabels: { zone: 'a', app: 'b=c' } }, 'node labels', 'app=b=c, zone=a'],
    ['no labels', { nodeLabels: {} }, 'node labels', '(none)'],
    ['labels not read, with why', { nodeLabels: null, nodeLabelsError: 'HTTP 403 (the service account needs RBAC get on nodes)' }, 'node labels', 'unknown: HTTP 403 (the service account needs RBAC get on nodes)'],
    ['labels not read yet', { nodeLabels: null }, 'node labels', 'unknown (not read yet)'],
    ['labels kept after a failed re-read', { nodeLabels: { tier: 'edge' }, nodeLabelsError: 'timeout' }, 'node labels', 'tier=edge (last read failed: timeout)'],
    ['no file', { file: null, loadedAt: null }, 'file', '(none)'],
    ['file not loaded yet', { loadedAt: null }, 'file', '/etc/flotilla/precache/sets.yaml'],
    ['file error', { fileError: 'line 3: expected a list' }, 'file error', 'line 3: expected a list (the last good sets stay in force)'],
    ['no file error: no line', {}, 'file error', undefined],
    ['store mode', { mode: 'store' }, 'mode', "store (warmed into the agent's own store)"],
    ['control characters from the agent are not printed', { fileError: 'bad\u001b[31m\nfile' }, 'file error', 'bad [31m file (the last good sets stay in force)'],
  ]
  for (const [name, patch, label, want] of headers) {
    void test(`header: ${name}`, () => {
      assert.equal(headerValue(status(patch), label), want)
    })
  }

  const cells: Array<[string, Partial<PrecacheImageStatus>, Record<string, string>]> = [
    ['digest: 12 hex chars after sha256:', {}, { DIGEST: '3f4a5b6c7d8e' }],
    ['digest unknown', { digest: null }, { DIGEST: '-' }],
    ['digest of another algorithm', { digest: `sha512:${'e'.repeat(128)}` }, { DIGEST: 'eeeeeeeeeeee' }],
    ['confirmed seconds ago', { lastConfirmed: secondsAgo(59) }, { CONFIRMED: '59s ago' }],
    ['confirmed minutes ago', { lastConfirmed: secondsAgo(3 * 60 + 59) }, { CONFIRMED: '3m ago' }],
    ['confirmed hours ago', { lastConfirmed: secondsAgo(5 * 3600) }, { CONFIRMED: '5h ago' }],
    ['confirmed days ago', { lastConfirmed: secondsAgo(3 * 86_400) }, { CONFIRMED: '3d ago' }],
    ['confirmed ahead of this clock', { lastConfirmed: secondsAgo(-30) }, { CONFIRMED: 'just now' }],
    ['never confirmed', { lastConfirmed: null }, { CONFIRMED: '-' }],
    ['size unknown', { bytes: null }, { SIZE: '-' }],
    ['size in bytes', { bytes: 999 }, { SIZE: '999 B' }],
    ['size zero', { bytes: 0 }, { SIZE: '0 B' }],
    ['size in kB', { bytes: 1000 }, { SIZE: '1.0 kB' }],
    ['size rounding up to the next unit', { bytes: 999_960 }, { SIZE: '1.0 MB' }],
    ['size in GB', { bytes: 5_250_000_000 }, { SIZE: '5.3 GB' }],
    ['phases as they are', { phase: 'Pulling', pinned: false }, { PHASE: 'Pulling', PINNED: 'no' }],
    ['pending', { phase: 'Pending' }, { PHASE: 'Pending', PINNED: 'yes' }],
    ['no error', {}, { ERROR: '-' }],
    ['a short error whole', { error: 'manifest unknown' }, { ERROR: 'manifest unknown' }],
    ['a long error cut in the middle, its end kept', {
      error: 'pull failed: rpc error: code = Unknown desc = failed to resolve reference "registry.example.com/team/web:v1.4": unexpected status 503 Service Unavailable',
    }, { ERROR: 'pull failed: rpc error:…ected status 503 Service Unavailable' }],
    ['a multi-line error on one line', { error: 'first\nsecond' }, { ERROR: 'first second' }],
    ['a tag reference whole', {}, { IMAGE: 'registry.example.com/team/web:v1.4' }],
    ['a digest reference shortened', { ref: `registry.example.com/team/web@${WEB}` }, { IMAGE: 'registry.example.com/team/web@sha256:3f4a5b6c7d8e…' }],
  ]
  for (const [name, patch, want] of cells) {
    void test(`cell: ${name}`, () => {
      const got = rowCells(image(patch))
      for (const [column, value] of Object.entries(want)) assert.equal(got[column], value, `${column} of ${JSON.stringify(got)}`)
    })
  }

  void test('a long error keeps the line readable: at most 60 characters of it', () => {
    const got = rowCells(image({ error: 'x'.repeat(500) }))
    assert.equal(got.ERROR?.length, 60)
  })

  void test('every row puts each column under its header', () => {
    const out = lines(status({
      sets: [{ name: 'a-long-set-name', matches: true, refreshSeconds: 60, images: [image(), image({ ref: 'docker.io/library/busybox:1.36', phase: 'Pending', digest: null })] }],
    }))
    const head = out.find((l) => l.startsWith('SET ')) ?? ''
    const rows = out.filter((l) => l.startsWith('a-long-set-name'))
    assert.equal(rows.length, 2)
    for (const row of rows) {
      for (const [column, value] of [['PHASE', /^(Ready|Pending) /], ['DIGEST', /^(3f4a5b6c7d8e|-) /]] as const) {
        assert.match(row.slice(head.indexOf(column)), value, `${column} in ${JSON.stringify(row)} under ${JSON.stringify(head)}`)
      }
    }
  })

  void test('a matching set without images, and no sets at all', () => {
    assert.ok(lines(status({ sets: [{ name: 'empty', matches: true, refreshSeconds: 600, images: [] }] })).includes('empty  (no images)'))
    const none = lines(status({ sets: [] }))
    assert.ok(none.includes('no sets declared'), none.join('\n'))
    assert.ok(!none.some((l) => l.startsWith('SET ')))
  })

  void test('the summary counts only the images of sets on this node', () => {
    const out = lines(status({
      sets: [
        { name: 'here', matches: true, refreshSeconds: 600, images: [image({ phase: 'Pulling' }), image({ phase: 'Pulling' }), image({ phase: 'Ready' })] },
        { name: 'there', matches: false, refreshSeconds: 600, images: [] },
        { name: 'also-there', matches: false, refreshSeconds: 600, images: [] },
      ],
    }))
    assert.ok(out.includes('3 images on this node: 2 Pulling, 1 Ready; 2 sets not on this node'), out.join('\n'))
  })
})
