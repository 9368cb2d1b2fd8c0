import { age, duration, humanBytes, humanRate, shortDigest } from './format.js'
import type { NodeStatus } from './node-status.js'

/**
 * `/status`: one node at a glance, rendered on the server from the same `NodeStatus` as `/status.json`.
 * Everything from the node is escaped; no external assets; readable without JavaScript (a meta refresh then),
 * and with it a small script swaps in a fresh render every few seconds. Pure: the status carries its clock.
 */

export const STATUS_REFRESH_SECONDS = 3

/** The page's Content-Security-Policy: its own inline style and script, fetches to itself, nothing else. */
export const STATUS_PAGE_CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'"

export function renderStatusPage (status: NodeStatus): string {
  const now = new Date(status.node.now)
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>flotilla · ${esc(status.node.address)}</title>
<noscript><meta http-equiv="refresh" content="${STATUS_REFRESH_SECONDS * 3}"></noscript>
<style>${STYLE}</style>
</head>
<body>
<main id="status">
${renderMain(status, now)}
</main>
<script>${SCRIPT}</script>
</body>
</html>
`
}

/** The part the script replaces on refresh. */
function renderMain (s: NodeStatus, now: Date): string {
  return [
    `<header><h1>flotilla <span class="muted">${esc(s.node.role)}</span></h1><p class="muted">as of <time datetime="${esc(s.node.now)}">${esc(s.node.now)}</time> <span id="refresh-state"></span></p></header>`,
    nodeSection(s),
    peersSection(s, now),
    storeSection(s),
    downloadsSection(s),
    precacheSection(s, now),
    upstreamsSection(s, now),
    errorsSection(s, now),
    trafficSection(s),
  ].join('\n')
}

function nodeSection (s: NodeStatus): string {
  const n = s.node
  return section('node', 'This node', dl([
    ['role', esc(n.role)],
    ['zone', n.zone === null ? none('no zone') : esc(n.zone)],
    ['version', esc(n.version)],
    ['address', `<code>${esc(n.address)}</code>`],
    ['uptime', `${esc(duration(n.uptimeSeconds))} <span class="muted">(since ${esc(n.startedAt)})</span>`],
  ]))
}

function peersSection (s: NodeStatus, now: Date): string {
  const body = s.peers.length === 0
    ? `<p>${none('no peers connected')}</p>`
    : table(['peer', 'address', 'zone', 'last seen'], s.peers.map((p) => [
      `<code title="${esc(p.id)}">${esc(shorten(p.id, 20))}</code>`,
      p.address === null ? none('unknown') : `<code>${esc(p.address)}</code>`,
      p.zone === null ? none('-') : esc(p.zone),
      p.lastSeen === null ? none('-') : esc(age(p.lastSeen, now)),
    ]))
  return section('peers', `Peers <span class="count">${s.peers.length}</span>`, body)
}

function storeSection (s: NodeStatus): string {
  const st = s.store
  const used = st.budgetBytes === null || st.budgetBytes === 0 ? undefined : Math.min(1, st.bytes / st.budgetBytes)
  const bar = used === undefined ? '' : `<div class="bar" role="img" aria-label="${(used * 100).toFixed(0)}% of the budget"><span style="width:${(used * 100).toFixed(1)}%"></span></div>`
  return section('store', 'Store', dl([
    ['held', esc(humanBytes(st.bytes))],
    ['budget', st.budgetBytes === null ? none('not computed yet') : `${esc(humanBytes(st.budgetBytes))}${used === undefined ? '' : ` <span class="muted">(${(used * 100).toFixed(0)}% used)</span>`}`],
    ['own copies', st.ownBytes === null ? none('not measured yet') : esc(humanBytes(st.ownBytes))],
    ['links to containerd', st.linkedBytes === null ? none('not measured yet') : esc(humanBytes(st.linkedBytes))],
    ['evictions', `${st.evictions} <span class="muted">(${esc(humanBytes(st.evictedBytes))})</span>`],
  ]) + bar)
}

function downloadsSection (s: NodeStatus): string {
  const body = s.downloads.length === 0
    ? `<p>${none('no downloads running')}</p>`
    : table(['blob', 'registry', 'source', 'done', 'rate'], s.downloads.map((d) => {
      const pct = d.size === null || d.size === 0 ? undefined : Math.min(100, (d.bytesDone / d.size) * 100)
      return [
        `<code title="${esc(d.digest)}">${esc(shortDigest(d.digest))}</code>`,
        d.registry === null ? none('-') : esc(d.registry) + (d.repository === null ? '' : `/${esc(d.repository)}`),
        esc(d.source),
        `${esc(humanBytes(d.bytesDone))}${d.size === null ? '' : ` / ${esc(humanBytes(d.size))}`}` +
          (pct === undefined ? '' : ` <progress max="100" value="${pct.toFixed(1)}">${pct.toFixed(0)}%</progress> ${pct.toFixed(0)}%`),
        esc(humanRate(d.rate)),
      ]
    }))
  return section('downloads', `Downloads in flight <span class="count">${s.downloads.length}</span>`, body)
}

function precacheSection (s: NodeStatus, now: Date): string {
  const p = s.precache
  if (p === null) return section('precache', 'Pre-cache', `<p>${none('not configured (precache.file)')}</p>`)
  const head = dl([
    ['file', p.file === null ? none('none') : `<code>${esc(p.file)}</code>${p.loadedAt === null ? '' : ` <span class="muted">(loaded ${esc(age(p.loadedAt, now))})</span>`}`],
    ...(p.fileError === null ? [] : [['file error', `<span class="bad">${esc(p.fileError)}</span> (the last good sets stay in force)`] as [string, string]]),
    ['mode', esc(p.mode)],
    ['pin', p.pin.honoured === null ? none('unknown') : p.pin.honoured ? 'honoured' : '<span class="bad">not honoured</span>'],
  ])
  const rows = p.sets.flatMap((set) => {
    if (!set.matches) return [[esc(set.name), none('not on this node'), '', '', '']]
    if (set.images.length === 0) return [[esc(set.name), none('no images'), '', '', '']]
    return set.images.map((i) => [
      esc(set.name), `<code>${esc(i.ref)}</code>`, `<span class="phase ${esc(i.phase.toLowerCase())}">${esc(i.phase)}</span>`,
      i.bytes === null ? none('-') : esc(humanBytes(i.bytes)), i.error === null ? '' : `<span class="bad">${esc(i.error)}</span>`,
    ])
  })
  const body = p.sets.length === 0 ? `<p>${none('no sets declared')}</p>` : table(['set', 'image', 'phase', 'size', 'error'], rows)
  return section('precache', 'Pre-cache', head + body)
}

function upstreamsSection (s: NodeStatus, now: Date): string {
  const body = s.upstreams.length === 0
    ? `<p>${none('no upstream registries')}</p>`
    : table(['registry', 'endpoint', 'circuit', 'last error'], s.upstreams.map((u) => [
      esc(u.registry), `<code>${esc(u.endpoint)}</code>`,
      `<span class="circuit ${esc(u.circuit)}">${esc(u.circuit)}</span>`,
      u.lastError === null ? none('none') : `<span class="bad">${esc(u.lastError)}</span>${u.lastErrorAt === null ? '' : ` <span class="muted">(${esc(age(u.lastErrorAt, now))})</span>`}`,
    ]))
  return section('upstreams', 'Upstreams', body)
}

function errorsSection (s: NodeStatus, now: Date): string {
  const body = s.recentErrors.length === 0
    ? `<p>${none('no errors')}</p>`
    : `<ol class="errors">${s.recentErrors.map((e) => `<li><time datetime="${esc(e.at)}">${esc(age(e.at, now))}</time> ${esc(e.message)}</li>`).join('')}</ol>`
  return section('errors', `Recent errors <span class="count">${s.recentErrors.length}</span>`, body)
}

function trafficSection (s: NodeStatus): string {
  const entries = Object.entries(s.servedBytes).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
  const body = (entries.length === 0
    ? `<p>${none('nothing served yet')}</p>`
    : table(['served from', 'bytes'], entries.map(([source, n]) => [esc(source), esc(humanBytes(n))]))) +
    dl([['upstream bytes saved', esc(humanBytes(s.upstreamBytesSaved))]])
  return section('traffic', 'Bytes served', body)
}

function section (id: string, title: string, body: string): string {
  return `<section id="${id}"><h2>${title}</h2>${body}</section>`
}

/** Label/value pairs; values are HTML already escaped by the caller. */
function dl (pairs: ReadonlyArray<readonly [string, string]>): string {
  return `<dl>${pairs.map(([k, v]) => `<dt>${esc(k)}</dt><dd>${v}</dd>`).join('')}</dl>`
}

/** Cells are HTML already escaped by the caller. */
function table (head: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
  return `<table><thead><tr>${head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>${rows.map((r) => `<tr>${r.map((c) => `<td>${c}</td>`).join('')}</tr>`).join('')}</tbody></table>`
}

function none (text: string): string {
  return `<span class="muted">${esc(text)}</span>`
}

function shorten (text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, 6)}…${text.slice(-(max - 7))}`
}

/** HTML-escapes text for element content and quoted attribute values. */
export function esc (text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c)
}

const STYLE = `
:root{color-scheme:light dark;--fg:#1b1f24;--bg:#fff;--muted:#6a737d;--line:#d8dee4;--bad:#b42318;--ok:#067647;--warn:#b54708;--accent:#2563eb}
@media (prefers-color-scheme:dark){:root{--fg:#e6edf3;--bg:#0d1117;--muted:#8b949e;--line:#30363d;--bad:#f97066;--ok:#47cd89;--warn:#fdb022;--accent:#60a5fa}}
body{font:14px/1.45 system-ui,sans-serif;color:var(--fg);background:var(--bg);margin:0 auto;max-width:72rem;padding:1rem 1.5rem}
h1{font-size:1.4rem;margin:.2rem 0}h2{font-size:1.05rem;margin:1.4rem 0 .4rem;border-bottom:1px solid var(--line);padding-bottom:.2rem}
.muted{color:var(--muted)}.bad{color:var(--bad)}.count{color:var(--muted);font-weight:normal}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.15rem 1rem;margin:.3rem 0}dt{color:var(--muted)}dd{margin:0}
table{border-collapse:collapse;width:100%;margin:.3rem 0}th,td{text-align:left;padding:.25rem .6rem .25rem 0;border-bottom:1px solid var(--line);vertical-align:top}
th{font-weight:600;color:var(--muted)}code{font:12px ui-monospace,monospace;word-break:break-all}
.phase.ready,.circuit.closed{color:var(--ok)}.phase.failed,.circuit.open{color:var(--bad)}.phase.pulling,.phase.pending,.circuit.half-open{color:var(--warn)}
.bar{height:.5rem;background:var(--line);border-radius:.25rem;overflow:hidden;max-width:24rem}.bar span{display:block;height:100%;background:var(--accent)}
progress{width:6rem;vertical-align:middle}ol.errors{padding-left:1.2rem;margin:.3rem 0}ol.errors li{margin:.15rem 0}
`

// Fetches a fresh render of this page and swaps its <main> in; on failure says so and keeps the last one.
const SCRIPT = `
(function () {
  var every = ${STATUS_REFRESH_SECONDS * 1000};
  function say (text) { var el = document.getElementById('refresh-state'); if (el) el.textContent = text; }
  function refresh () {
    fetch(location.pathname, { cache: 'no-store', headers: { accept: 'text/html' } })
      .then(function (res) { if (!res.ok) throw new Error('HTTP ' + res.status); return res.text(); })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, 'text/html').getElementById('status');
        var current = document.getElementById('status');
        if (fresh && current) current.replaceWith(document.adoptNode(fresh));
        say('(refreshing every ' + every / 1000 + ' s)');
      })
      .catch(function (err) { say('(refresh failed: ' + err.message + '; retrying)'); })
      .then(function () { setTimeout(refresh, every); });
  }
  say('(refreshing every ' + every / 1000 + ' s)');
  setTimeout(refresh, every);
})();
`
