const MAX_DETAIL_CHARS = 200

/** Text from elsewhere (a server's message, a label value, a parser's error), made fit for one line of a log or a CLI. */
export function oneLine (text: string): string {
  // eslint-disable-next-line no-control-regex
  const flat = text.replace(/[\u0000-\u001f\u007f-\u009f]+/g, ' ').replace(/ {2,}/g, ' ').trim()
  return flat.length > MAX_DETAIL_CHARS ? `${flat.slice(0, MAX_DETAIL_CHARS)}…` : flat
}

/** An error's message on one line, led by its errno-style code when the message does not name it. */
export function describeError (err: unknown): string {
  // A host name with several addresses: each refused connection is one error, all alike.
  if (err instanceof AggregateError && err.message === '' && err.errors.length > 0) return describeError(err.errors[0])
  if (!(err instanceof Error)) return oneLine(String(err))
  const code = (err as NodeJS.ErrnoException).code
  return oneLine(code === undefined || err.message.includes(code) ? err.message : `${code}: ${err.message}`)
}
