// The floor of a pull-through in Node on this machine: the least a Node process can do to relay a 200 MB blob
// from a Distribution on loopback to curl (an undici request piped to a node:http response; no hashing, no disk,
// no bookkeeping), next to curl straight from Distribution. flotilla's cold pull-through (bench/run.ts, "cold
// uncapped"; bench/profile-cold.ts) cannot be faster than this; BENCHMARKS.md compares the three.
//
//   npx tsx bench/relay-floor.ts      (needs docker-registry, curl)
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { pipeline } from 'node:stream/promises'
import { Agent, request } from 'undici'
import { startDistribution } from '../test/helpers/distribution.js'
import { makeTempDir } from '../test/helpers/temp-dir.js'
import { curlDownloader, median } from './blob-download.js'
import { buildBenchImage, writeSeededBlob } from './blob-fixture.js'
import { pushBenchImage } from './registry-push.js'

const RUNS = Number(process.env.RUNS ?? 5)

function relayTo (upstream: string, dispatcher: Agent): Server {
  return createServer((req, res) => {
    request(`${upstream}${req.url ?? '/'}`, { dispatcher }).then(async (up) => {
      res.writeHead(up.statusCode, { 'content-length': String(up.headers['content-length'] ?? '') })
      await pipeline(up.body, res)
    }).catch(() => { res.destroy() })
  })
}

const tmp = await makeTempDir('relay-floor')
const registry = await startDistribution()
const dispatcher = new Agent()
const relay = relayTo(registry.url, dispatcher).listen(0, '127.0.0.1')
try {
  await new Promise((resolve) => relay.once('listening', resolve))
  const relayUrl = `http://127.0.0.1:${(relay.address() as AddressInfo).port}`
  const blob = await writeSeededBlob(join(tmp.path, 'blob.bin'), 200_000_000, 'flotilla-bench')
  await pushBenchImage(registry.url, buildBenchImage(blob, 'bench/blob', 'v1'), { dispatcher, signal: AbortSignal.timeout(60_000) })
  const download = curlDownloader()
  const path = `/v2/bench/blob/blobs/${blob.digest}`
  const direct: number[] = []
  const relayed: number[] = []
  for (let i = 0; i < RUNS; i++) {
    direct.push((await download(registry.url + path, AbortSignal.timeout(60_000))).ms)
    const r = await download(relayUrl + path, AbortSignal.timeout(60_000))
    if (r.status !== 200 || r.bytes !== blob.size) throw new Error(`relay: status ${r.status}, ${r.bytes} bytes`)
    relayed.push(r.ms)
  }
  const show = (t: number[]): string => `median ${median(t).toFixed(0)} ms (runs ${t.map((x) => x.toFixed(0)).join(', ')})`
  console.log(`direct from Distribution: ${show(direct)}`)
  console.log(`through the minimal Node relay: ${show(relayed)}; ${(median(relayed) / median(direct)).toFixed(1)}× direct`)
} finally {
  relay.close()
  await registry.stop()
  await dispatcher.close()
  await tmp.cleanup()
}
