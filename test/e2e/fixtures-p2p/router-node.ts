/**
 * One libp2p router in its own process, driven over stdin/stdout JSON lines (see p2p-router.test.ts).
 * argv[2]: JSON { listen, bootstrap, clusterKey (text), identityFile, httpAddress, zone? }.
 * Out: { type: 'started', id, multiaddrs, startMs, rssMiB }, then { seq, ok, ...result } per request.
 */
import '../../../src/p2p/polyfill.js'
import { createInterface } from 'node:readline'
import { pino } from 'pino'
import { createLibp2pRouter } from '../../../src/p2p/libp2p-router.js'

export interface NodeConfig {
  listen: string
  bootstrap: string[]
  clusterKey: string
  identityFile: string
  httpAddress: string
  zone?: string
  bootstrapIntervalMs?: number
  readvertiseIntervalMs?: number
  recordTtlMs?: number
  kBucketSize?: number
}

type Request =
  | { seq: number, op: 'status' }
  | { seq: number, op: 'advertise', keys: string[] }
  | { seq: number, op: 'withdraw', keys: string[] }
  | { seq: number, op: 'find', key: string, timeoutMs: number, limit?: number }
  | { seq: number, op: 'close' }

const config = JSON.parse(process.argv[2] ?? '{}') as NodeConfig
const send = (message: object): void => { process.stdout.write(`${JSON.stringify(message)}\n`) }
const rssMiB = (): number => Math.round(process.memoryUsage().rss / 2 ** 20)

const t0 = performance.now()
const router = await createLibp2pRouter({
  listen: config.listen,
  bootstrap: config.bootstrap,
  clusterKey: new TextEncoder().encode(config.clusterKey),
  identityFile: config.identityFile,
  httpAddress: config.httpAddress,
  ...(config.zone === undefined ? {} : { zone: config.zone }),
  ...(config.bootstrapIntervalMs === undefined ? {} : { bootstrapIntervalMs: config.bootstrapIntervalMs }),
  ...(config.readvertiseIntervalMs === undefined ? {} : { readvertiseIntervalMs: config.readvertiseIntervalMs }),
  ...(config.recordTtlMs === undefined ? {} : { recordTtlMs: config.recordTtlMs }),
  ...(config.kBucketSize === undefined ? {} : { kBucketSize: config.kBucketSize }),
  logger: pino({ level: process.env.FLOTILLA_TEST_LOG ?? 'warn' }, pino.destination(2)),
})
send({ type: 'started', id: router.self().id, multiaddrs: router.multiaddrs(), startMs: Math.round(performance.now() - t0), rssMiB: rssMiB() })

async function handle (request: Request): Promise<object> {
  switch (request.op) {
    case 'status':
      return { ready: router.ready(), peers: router.peers(), self: router.self(), rssMiB: rssMiB() }
    case 'advertise': {
      const started = performance.now()
      await router.advertise(request.keys, AbortSignal.timeout(10_000))
      return { ms: performance.now() - started }
    }
    case 'withdraw':
      await router.withdraw(request.keys)
      return {}
    case 'find': {
      const started = performance.now()
      let firstMs: number | undefined
      const providers = []
      const options = { signal: AbortSignal.timeout(request.timeoutMs), ...(request.limit === undefined ? {} : { limit: request.limit }) }
      for await (const provider of router.findProviders(request.key, options)) {
        firstMs ??= performance.now() - started
        providers.push(provider)
      }
      return { providers, firstMs, totalMs: performance.now() - started }
    }
    case 'close':
      await router.close()
      return {}
  }
}

async function shutdown (): Promise<void> {
  await router.close()
  process.exit(0)
}

// requests run concurrently; stdin closing (parent gone) shuts the node down
const lines = createInterface({ input: process.stdin })
lines.on('line', (line) => {
  if (line.trim() === '') return
  const request = JSON.parse(line) as Request
  handle(request).then(
    result => send({ seq: request.seq, ok: true, ...result }),
    (err: unknown) => send({ seq: request.seq, ok: false, error: String(err) }),
  ).finally(() => {
    if (request.op === 'close') void shutdown()
  })
})
lines.on('close', () => { void shutdown() })
