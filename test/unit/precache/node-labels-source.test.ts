// The pre-cache's view of the node's labels: configured, or read from the node object (a local HTTPS server
// standing in for the API server) and read again periodically; a failed read keeps the last labels.
import assert from 'node:assert/strict'
import { readFile, writeFile } from 'node:fs/promises'
import { createServer, type Server } from 'node:https'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { pino } from 'pino'
import { NodeLabelsSource } from '../../../src/precache/node-labels-source.js'
import { runCommandChecked } from '../../helpers/run-command.js'
import { makeTempDir, type TempDir } from '../../helpers/temp-dir.js'
import { waitFor } from '../../helpers/wait-for.js'

describe('NodeLabelsSource', () => {
  let dir: TempDir
  let server: Server
  let node: { labels: Record<string, string> } | 'fail' = { labels: { tier: 'edge' } }
  let options: { nodeName: string, apiUrl: string, tokenFile: string, caFile: string }

  before(async () => {
    dir = await makeTempDir('node-labels-source')
    await runCommandChecked('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
      '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', join(dir.path, 'api.key'), '-out', join(dir.path, 'api.crt')], { timeoutMs: 30_000 })
    await writeFile(join(dir.path, 'token'), 'token')
    server = createServer({ cert: await readFile(join(dir.path, 'api.crt')), key: await readFile(join(dir.path, 'api.key')) }, (_req, res) => {
      if (node === 'fail') {
        res.writeHead(503, { 'content-type': 'application/json' }).end('{"kind":"Status","message":"etcd is unhappy"}')
        return
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ kind: 'Node', metadata: { name: 'node-a', labels: node.labels } }))
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    options = { nodeName: 'node-a', apiUrl: `https://127.0.0.1:${(server.address() as AddressInfo).port}`, tokenFile: join(dir.path, 'token'), caFile: join(dir.path, 'api.crt') }
  })
  after(async () => {
    server.closeAllConnections()
    server.close()
    await dir.cleanup()
  })

  it('configured labels are used as they are; the node is never asked', async () => {
    const heard: Array<Readonly<Record<string, string>>> = []
    const s = new NodeLabelsSource({ configured: { tier: 'core' }, node: options, logger: pino({ level: 'silent' }), onLabels: (l) => heard.push(l) })
    await s.start()
    s.close()
    assert.deepEqual(heard, [{ tier: 'core' }])
  })

  it('reads the node object, again periodically; a failed read keeps the last labels and says why', async () => {
    node = { labels: { tier: 'edge' } }
    const heard: Array<Readonly<Record<string, string>>> = []
    const s = new NodeLabelsSource({ node: options, logger: pino({ level: 'silent' }), onLabels: (l) => heard.push(l), intervalMs: 50 })
    await s.start()
    try {
      assert.deepEqual(heard[0], { tier: 'edge' })
      node = { labels: { tier: 'edge', gpu: 'true' } }
      await waitFor(() => heard.some((l) => l.gpu === 'true'), { timeoutMs: 5000, intervalMs: 10, what: 'a label added to the node' })
      node = 'fail'
      await waitFor(() => s.error !== undefined, { timeoutMs: 5000, intervalMs: 10, what: 'the failed read' })
      assert.match(s.error ?? '', /503/)
      assert.deepEqual(s.labels, { tier: 'edge', gpu: 'true' }, 'the last labels stay')
    } finally {
      s.close()
    }
  })
})
