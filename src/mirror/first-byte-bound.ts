const LATE = Symbol('late')

/**
 * `work` if it settles within `ms`; else whatever `late()` gives (an error the client can fall back on, or a
 * stale answer), while `work` goes on in the background and keeps what it fetches.
 */
export async function withinBound<T> (work: Promise<T>, ms: number, late: () => T | Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timedOut = new Promise<typeof LATE>((resolve) => { timer = setTimeout(() => resolve(LATE), ms) })
  try {
    const first = await Promise.race([work, timedOut])
    if (first !== LATE) return first
    work.catch(() => {})
    return await late()
  } finally {
    clearTimeout(timer)
  }
}
