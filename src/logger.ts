import { pino, type Logger } from 'pino'

/** JSON lines to stderr; human-readable when stderr is a terminal. */
export function createLogger (level: string, options: { pretty?: boolean } = {}): Logger {
  const pretty = options.pretty ?? process.stderr.isTTY === true
  if (pretty) {
    return pino({ level, transport: { target: 'pino-pretty', options: { destination: 2, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' } } })
  }
  return pino({ level, base: { pid: process.pid } }, pino.destination({ fd: 2, sync: false }))
}
