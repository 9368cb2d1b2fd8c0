import type { Dispatcher } from 'undici'

/** Small bodies are drained so the keep-alive socket is reused; past this the socket is not worth it. */
const DRAIN_LIMIT_BYTES = 64 * 1024

/**
 * Gets rid of a body nobody will read (error statuses, redirects, unusable answers) without ever failing:
 * its response has already been decided on. Never `destroy()` an undici body bare: it then emits an
 * abort error that nobody listens to.
 */
export async function discardBody (body: Dispatcher.ResponseData['body']): Promise<void> {
  try {
    await body.dump({ limit: DRAIN_LIMIT_BYTES })
  } catch {
    // A body that fails while being drained has nothing more to say.
  }
}
