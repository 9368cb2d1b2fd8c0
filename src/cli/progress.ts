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

/** A counter of things done (images Ready, say) whose total may grow while it runs. */
export interface CountProgress {
  /** `done` of `total`; `detail` is shown after the count (`2 Pulling, 1 Pending`). */
  update (done: number, total: number, detail?: string): void
  stop (): void
}

/**
 * A count for a long wait: a bar on a terminal (`stream`, stderr by default); otherwise one plain line on
 * `lines` (stdout) each time the count or its detail changes, so a CI log shows each step once.
 */
export function countProgress (label: string, stream: NodeJS.WriteStream = process.stderr, lines: NodeJS.WritableStream = process.stdout): CountProgress {
  if (stream.isTTY !== true) {
    let last = ''
    return {
      update: (done, total, detail) => {
        const line = `${label}: ${done}/${total}${detail === undefined || detail === '' ? '' : ` (${detail})`}`
        if (line !== last) lines.write(`${line}\n`)
        last = line
      },
      stop: () => {},
    }
  }
  const bar = new SingleBar({ stream, format: `${label} [{bar}] {value}/{total} {detail}`, hideCursor: true, clearOnComplete: false })
  let isStarted = false
  return {
    update: (done, total, detail = '') => {
      if (!isStarted) {
        bar.start(Math.max(total, 1), done, { detail })
        isStarted = true
        return
      }
      bar.setTotal(Math.max(total, 1))
      bar.update(Math.min(done, total), { detail })
    },
    stop: () => {
      if (isStarted) bar.stop()
      isStarted = false
    },
  }
}
