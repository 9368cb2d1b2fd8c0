const MAX_DETAIL_CHARS = 200

/** Text from elsewhere (a server's message, a label value), made fit for a one-line log message. */
export function oneLine (text: string): string {
  // eslint-disable-next-line no-control-regex
  const flat = text.replace(/[\u0000-\u001f\u007f]+/g, ' ').trim()
  return flat.length > MAX_DETAIL_CHARS ? `${flat.slice(0, MAX_DETAIL_CHARS)}…` : flat
}

/** An error's message on one line, led by its errno-style code when the message does not name it. */
export function describeError (err: unknown): string {
  if (!(err instanceof Error)) return oneLine(String(err))
  const code = (err as NodeJS.ErrnoException).code
  return oneLine(code === undefined || err.message.includes(code) ? err.message : `${code}: ${err.message}`)
}
