// The status page's HTML, rendered from a NodeStatus: every section, everything escaped, nothing external.
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { esc, renderStatusPage } from '../../../src/status/status-page.js'
import { emptyStatus, fullStatus } from './node-status-fixture.js'

/** The HTML of one `<section id="…">`. */
function section (html: string, id: string): string {
  const m = new RegExp(`<section id="${id}">([\\s\\S]*?)</section>`).exec(html)
  assert.ok(m !== null, `section ${id}`)
  return m[1] ?? ''
}

/** Its text, tags dropped and entities decoded: what a reader sees. */
function text (html: string): string {
  return html.replace(/<[^>]*>/g, ' ').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&amp;/g, '&').replace(/\s+/g, ' ')
}

void describe('renderStatusPage', () => {
  const html = renderStatusPage(fullStatus())

  void test('a whole document with its style and script inline and no external asset', () => {
    assert.match(html, /^<!doctype html>/)
    assert.match(html, /<style>[\s\S]+<\/style>/)
    assert.match(html, /<script>[\s\S]+<\/script>/)
    assert.doesNotMatch(html, /<(link|img)\b|<script\s+src|https?:\/\/(?!registry-1\.docker\.io|ghcr\.io)/)
    // Without JavaScript it still refreshes, more slowly.
    assert.match(html, /<noscript><meta http-equiv="refresh" content="\d+"><\/noscript>/)
  })

  void test('this node: role, zone, version, uptime, address', () => {
    const t = text(section(html, 'node'))
    for (const s of ['agent', 'eu-west-1a', '0.1.0', '1h', '10.0.0.1:5000']) assert.ok(t.includes(s), `${s} in ${t}`)
  })

  void test('peers: address, zone, last seen', () => {
    const t = text(section(html, 'peers'))
    assert.match(t, /Peers 1/)
    assert.match(t, /10\.0\.0\.2:5000 eu-west-1b just now/)
  })

  void test('store: bytes, budget, links to containerd, evictions', () => {
    const t = text(section(html, 'store'))
    assert.match(t, /held 2\.5 GB/)
    assert.match(t, /budget 10\.0 GB \(25% used\)/)
    assert.match(t, /links to containerd 500\.0 MB/)
    assert.match(t, /evictions 3 \(123\.0 MB\)/)
  })

  void test('downloads in flight: bytes done of size and rate', () => {
    const t = text(section(html, 'downloads'))
    assert.match(t, /3f4a5b6c7d8e docker\.io upstream:docker\.io 5\.0 MB \/ 20\.0 MB .*25% 1\.3 MB\/s/)
    assert.match(section(html, 'downloads'), /<progress max="100" value="25\.0">/)
  })

  void test("pre-cache: each image's phase, sets not on this node said so", () => {
    const t = text(section(html, 'precache'))
    assert.match(t, /web docker\.io\/library\/nginx:1\.27 Ready/)
    assert.match(t, /web docker\.io\/library\/redis:7 Pulling/)
    assert.match(t, /gpu not on this node/)
  })

  void test('upstreams: circuit state and last error, escaped', () => {
    const s = section(html, 'upstreams')
    assert.match(text(s), /ghcr\.io https:\/\/ghcr\.io open connect ECONNREFUSED <script>alert\(1\)<\/script> \(30s ago\)/)
    assert.doesNotMatch(s, /<script>/)
    assert.match(s, /&lt;script&gt;alert\(1\)&lt;\/script&gt;/)
  })

  void test('recent errors and bytes served by source, with the upstream bytes saved', () => {
    const errors = section(html, 'errors')
    assert.match(text(errors), /10s ago request failed: ERR_UPSTREAM_UNAVAILABLE "<img src=x onerror=alert\(2\)>" & more/)
    assert.doesNotMatch(errors, /<img/)
    const t = text(section(html, 'traffic'))
    assert.match(t, /hit 9\.0 MB peer 3\.0 MB upstream 1\.0 MB/)
    assert.match(t, /upstream bytes saved 12\.0 MB/)
  })

  void test('a node with nothing going on says so in each section', () => {
    const empty = renderStatusPage(emptyStatus())
    assert.match(text(section(empty, 'node')), /zone no zone/)
    assert.match(text(section(empty, 'peers')), /no peers connected/)
    assert.match(text(section(empty, 'store')), /budget not computed yet/)
    assert.match(text(section(empty, 'downloads')), /no downloads running/)
    assert.match(text(section(empty, 'precache')), /not configured/)
    assert.match(text(section(empty, 'upstreams')), /no upstream registries/)
    assert.match(text(section(empty, 'errors')), /no errors/)
    assert.match(text(section(empty, 'traffic')), /nothing served yet/)
  })

  void test('text from the node never becomes markup, in content or attributes', () => {
    const s = fullStatus()
    const evil = '"><script>alert(3)</script><b a=\''
    const page = renderStatusPage({
      ...s,
      node: { ...s.node, address: evil, role: evil, zone: evil, version: evil },
      peers: [{ id: evil, address: evil, zone: evil, lastSeen: null }],
      downloads: [{ ...s.downloads[0]!, digest: evil, registry: evil, source: evil }],
      servedBytes: { [evil]: 1 },
    })
    assert.equal(page.match(/<script>/g)?.length, 1, 'only the page\'s own script')
    assert.doesNotMatch(page, /<b a=/)
    assert.equal(esc(`<>&"'`), '&lt;&gt;&amp;&quot;&#39;')
  })
})
