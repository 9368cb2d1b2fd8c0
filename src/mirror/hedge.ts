import type { BlobSourceAttempt, OpenedSource, SourceOrigin } from './blob-source.js'

/**
 * Opens `a`; if it has not answered within `afterMs` (or failed), opens `b` too and takes whichever answers
 * first. The loser is aborted, or its body discarded if it answered as well. When both fail, the error is
 * `a`'s (the source the caller asked for first), not an AggregateError. The answer names who served.
 */
export function hedge (a: BlobSourceAttempt, b: BlobSourceAttempt, afterMs: number, origin: SourceOrigin = { kind: 'peers' }): BlobSourceAttempt {
  return {
    origin,
    open: async (offset, signal) => {
      const controllers = [new AbortController(), new AbortController()] as const
      const opened: Array<Promise<OpenedSource>> = []
      const start = async (i: 0 | 1): Promise<{ i: 0 | 1, r: OpenedSource }> => {
        const p = (i === 0 ? a : b).open(offset, AbortSignal.any([signal, controllers[i].signal]))
        opened[i] = p
        return await p.then((r) => ({ i, r }))
      }
      const dropLoser = (i: 0 | 1): void => {
        const p = opened[i]
        if (p === undefined) return
        let isSettled = false
        p.then((r) => {
          isSettled = true
          r.body.on('error', () => {})
          r.body.destroy()
        }, () => { isSettled = true })
        queueMicrotask(() => { if (!isSettled) controllers[i].abort(new Error('hedged request lost')) })
      }
      const first = start(0)
      let timer: NodeJS.Timeout | undefined
      const early = await Promise.race([
        first.catch(() => 'failed' as const),
        new Promise<'late'>((resolve) => { timer = setTimeout(() => { resolve('late') }, afterMs) }),
      ]).finally(() => { clearTimeout(timer) })
      if (typeof early === 'object') return { ...early.r, origin: early.r.origin ?? a.origin }
      const racers = early === 'late' ? [first, start(1)] : [start(1)]
      const winner = await Promise.any(racers).catch(async (err: unknown) => {
        // Both failed: a's own error says more than "All promises were rejected".
        await first
        throw err
      })
      dropLoser(winner.i === 0 ? 1 : 0)
      return { ...winner.r, origin: winner.r.origin ?? (winner.i === 0 ? a : b).origin }
    },
  }
}
