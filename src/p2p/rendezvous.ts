import { createHash } from 'node:crypto'

/**
 * Highest-random-weight (rendezvous) choice of an owner for a key among peer ids: every node that sees the
 * same set picks the same owner, and a departing node only moves the keys it owned.
 */
export function rendezvousOwner (key: string, ids: readonly string[]): string | undefined {
  let best: string | undefined
  let bestScore: Buffer | undefined
  for (const id of ids) {
    const score = createHash('sha256').update(id).update('\0').update(key).digest()
    if (bestScore === undefined || Buffer.compare(score, bestScore) > 0 || (Buffer.compare(score, bestScore) === 0 && id < (best ?? ''))) {
      best = id
      bestScore = score
    }
  }
  return best
}
