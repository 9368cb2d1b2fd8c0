import type { IncomingHttpHeaders } from 'node:http'

/** A response header's value (the first one, when repeated); names are lowercase in undici. */
export function firstHeader (headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name]
  return Array.isArray(value) ? value[0] : value
}
