export interface TagListAnswer {
  readonly headers: Readonly<Record<string, string>>
  readonly body: Buffer
}

export interface AskedRepository {
  /** The repository as the client named it in the path (`busybox`, `127.0.0.1:5001/team/app`). */
  readonly name: string
  /** The client's path, still percent-encoded (`/v2/busybox/tags/list`). */
  readonly rawPathname: string
  /** The client's `ns` query parameter, kept on the next-page link. */
  readonly ns?: string
}

/**
 * A tags/list answer as the client must see it: `name` is the repository it asked for, not what the
 * upstream calls it (`library/busybox` for `busybox`, `team/app` for `127.0.0.1:5001/team/app`), and a
 * next-page `Link` points back at the client's own path, so that following it reaches the same upstream.
 * Pure: a body that is not a JSON object with a name is left as it is.
 */
export function renameTagList (answer: TagListAnswer, asked: AskedRepository): TagListAnswer {
  let body = answer.body
  try {
    const doc = JSON.parse(body.toString('utf8')) as unknown
    if (doc !== null && typeof doc === 'object' && !Array.isArray(doc) && typeof (doc as { name?: unknown }).name === 'string') {
      body = Buffer.from(JSON.stringify({ ...doc, name: asked.name }))
    }
  } catch {
    // Not JSON: passed on as the upstream sent it.
  }
  const link = answer.headers.link
  const m = link === undefined ? null : /^<([^>?]*)(?:\?([^>]*))?>(.*)$/s.exec(link)
  if (m === null || !(m[1] as string).endsWith('/tags/list')) return { headers: answer.headers, body }
  const params = new URLSearchParams(m[2] ?? '')
  if (asked.ns !== undefined && asked.ns !== '' && !params.has('ns')) params.set('ns', asked.ns)
  const query = params.toString()
  return { headers: { ...answer.headers, link: `<${asked.rawPathname}${query === '' ? '' : `?${query}`}>${m[3] as string}` }, body }
}
