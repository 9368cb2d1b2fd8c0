import { createServer } from 'node:net'

/**
 * Returns a TCP port that was free on 127.0.0.1 a moment ago. Another process may still take it
 * before the caller binds, so callers that spawn servers should retry on "address in use".
 */
export async function freePort (): Promise<number> {
  return await new Promise<number>((resolve, reject) => {
    const server = createServer()
    server.unref()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      if (address === null || typeof address === 'string') {
        server.close()
        reject(new Error('freePort: listening socket has no TCP address'))
        return
      }
      server.close((err) => { if (err) reject(err); else resolve(address.port) })
    })
  })
}
