// `npx tsx bench/zero-copy-bench.ts [--gets N]`: what sendfile(2) (the native addon) changes when a blob is
// served from a file, next to the JavaScript path: the same FileRangeStream behind a node:http server in this
// process, 200 MB blob, curl to /dev/null, GETs alternating between the two paths. Reported per path: MB/s
// (median and spread), the process's CPU per GB (user, system) and the event loop's utilisation while serving
// (how much of the main thread the bytes take from every other request). Writes bench/results/zero-copy.md.
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdir, open, writeFile } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { loadavg } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { promisify } from 'node:util'
import type { ZeroCopy } from '../src/http/sendable.js'
import { loadZeroCopy } from '../src/native/native-zero-copy.js'
import { FileRangeStream } from '../src/store/file-range-stream.js'
import { makeTempDir } from '../test/helpers/temp-dir.js'
import { median } from './blob-download.js'

const SIZE = 200_000_000
const RESULTS = join(import.meta.dirname, 'results', 'zero-copy.md')
const run = promisify(execFile)

interface PathFigures { mbps: number[], userMs: number, systemMs: number, eluActiveMs: number, wallMs: number }

async function main (): Promise<void> {
  const gets = Number(/--gets[= ](\d+)/.exec(process.argv.slice(2).join(' '))?.[1] ?? 10)
  const zc = loadZeroCopy()
  if (zc instanceof Error) throw new Error(`the native addon is not built (npm ci builds it): ${zc.message}`)
  const loadStart = loadavg()[0] ?? 0
  const tmp = await makeTempDir('zero-copy-bench')
  let server: Server | undefined
  try {
    const file = join(tmp.path, 'blob')
    await writeFile(file, randomBytes(SIZE))
    let zeroCopy: ZeroCopy | undefined
    server = createServer((_req, res) => {
      void (async () => {
        const fh = await open(file, 'r')
        res.writeHead(200, { 'content-length': String(SIZE) })
        await new FileRangeStream(fh, SIZE).sendTo(res, undefined, zeroCopy)
      })().catch(() => { res.destroy() })
    })
    await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve))
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`
    const curl = async (): Promise<number> => {
      const { stdout } = await run('curl', ['-sf', '-o', '/dev/null', '--max-time', '60', '-w', '%{speed_download} %{size_download}', url], { timeout: 65_000 })
      const [speed, size] = stdout.split(' ').map(Number)
      if (size !== SIZE) throw new Error(`curl got ${size} of ${SIZE} bytes`)
      return (speed ?? 0) / 1e6
    }
    const paths: Record<'sendfile' | 'JavaScript', PathFigures> = {
      sendfile: { mbps: [], userMs: 0, systemMs: 0, eluActiveMs: 0, wallMs: 0 },
      JavaScript: { mbps: [], userMs: 0, systemMs: 0, eluActiveMs: 0, wallMs: 0 },
    }
    zeroCopy = zc
    await curl() // page cache warm, addon loaded
    zeroCopy = undefined
    await curl()
    for (let i = 0; i < gets; i++) {
      for (const name of ['sendfile', 'JavaScript'] as const) {
        zeroCopy = name === 'sendfile' ? zc : undefined
        const p = paths[name]
        const cpu = process.cpuUsage()
        const elu = performance.eventLoopUtilization()
        const started = performance.now()
        p.mbps.push(await curl())
        p.wallMs += performance.now() - started
        const c = process.cpuUsage(cpu)
        p.userMs += c.user / 1000
        p.systemMs += c.system / 1000
        p.eluActiveMs += performance.eventLoopUtilization(elu).active
      }
    }
    const gb = (gets * SIZE) / 1e9
    const rows = Object.entries(paths).map(([name, p]) => `| ${name} | ${median(p.mbps).toFixed(0)} | ${p.mbps.map((v) => v.toFixed(0)).join(', ')} | ` +
      `${(p.userMs / 1000 / gb).toFixed(3)} | ${(p.systemMs / 1000 / gb).toFixed(3)} | ${(100 * p.eluActiveMs / p.wallMs).toFixed(1)} % |`)
    const report = [
      '# Serving a blob from a file: sendfile (native addon) vs JavaScript',
      '',
      `- Date: ${new Date().toISOString()}; load average ${loadStart.toFixed(2)} at start, ${(loadavg()[0] ?? 0).toFixed(2)} at end; Node ${process.version}`,
      `- Command: \`npx tsx bench/zero-copy-bench.ts --gets ${gets}\`: one 200 MB file, a node:http server in the bench process sending it with FileRangeStream.sendTo (with and without the addon), curl -o /dev/null over loopback, ${gets} GETs per path, alternating; CPU is the whole process's (the addon's threads included), the event loop's share is its active time over the GETs' wall time.`,
      '',
      '| Path | MB/s (median) | Runs, MB/s | CPU user s per GB | CPU system s per GB | Event loop busy during the GETs |',
      '| --- | --- | --- | --- | --- | --- |',
      ...rows,
      '',
    ].join('\n')
    process.stdout.write(`${report}\n`)
    await mkdir(join(import.meta.dirname, 'results'), { recursive: true })
    await writeFile(RESULTS, report)
  } finally {
    server?.closeAllConnections()
    server?.close()
    await tmp.cleanup()
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`zero-copy-bench: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`)
  process.exitCode = 1
})
