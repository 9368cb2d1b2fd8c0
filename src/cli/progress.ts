import { SingleBar } from 'cli-progress'

/** A byte counter for a long command: a bar on a terminal, nothing otherwise (the command prints one summary line). */
export interface Progress {
  /** Bytes done so far (the running total). */
  update (done: number): void
  stop (): void
}

export function byteProgress (label: string, total: number, stream: NodeJS.WriteStream = process.stderr): Progress {
  if (stream.isTTY !== true || total <= 0) return { update: () => {}, stop: () => {} }
  const bar = new SingleBar({
    stream, format: `${label} [{bar}] {percentage}% {doneMB}/{totalMB} MB {speed} MB/s`, hideCursor: true, clearOnComplete: false,
  })
  const started = Date.now()
  const fields = (done: number): Record<string, string> => ({
    doneMB: (done / 1e6).toFixed(1), totalMB: (total / 1e6).toFixed(1), speed: (done / 1e3 / Math.max(1, Date.now() - started)).toFixed(1),
  })
  bar.start(total, 0, fields(0))
  return {
    update: (done) => { bar.update(Math.min(done, total), fields(done)) },
    stop: () => { bar.stop() },
  }
}
