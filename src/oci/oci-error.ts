/**
 * OCI distribution error codes and the HTTP status each maps to: one table so they never drift apart. Codes
 * come from the distribution spec's table (plus Distribution's TAG_INVALID, RANGE_INVALID and UNAVAILABLE):
 * clients know them; an unknown endpoint is NAME_UNKNOWN, as in Distribution.
 */
export const OCI_STATUS = {
  BLOB_UNKNOWN: 404,
  BLOB_UPLOAD_INVALID: 400,
  BLOB_UPLOAD_UNKNOWN: 404,
  MANIFEST_BLOB_UNKNOWN: 404,
  MANIFEST_UNKNOWN: 404,
  MANIFEST_INVALID: 400,
  NAME_UNKNOWN: 404,
  NAME_INVALID: 400,
  TAG_INVALID: 400,
  DIGEST_INVALID: 400,
  SIZE_INVALID: 400,
  RANGE_INVALID: 416,
  UNAUTHORIZED: 401,
  DENIED: 403,
  UNSUPPORTED: 405,
  TOOMANYREQUESTS: 429,
  UNAVAILABLE: 503,
} as const

export type OciErrorCode = keyof typeof OCI_STATUS

/** An error that is part of the OCI API contract: the HTTP edge renders it as `{ errors: [...] }`. */
export class OciError extends Error {
  override readonly name = 'OciError'
  constructor (
    readonly code: OciErrorCode,
    message: string,
    readonly detail?: unknown,
    options?: ErrorOptions,
  ) {
    super(message, options)
  }

  get status (): number {
    return OCI_STATUS[this.code]
  }

  toJSON (): { errors: Array<{ code: string, message: string, detail?: unknown }> } {
    return { errors: [{ code: this.code, message: this.message, ...(this.detail === undefined ? {} : { detail: this.detail }) }] }
  }
}

/** The messages of an OCI error body (`{ errors: [{ code, message }] }`), joined; undefined when the text is not one. */
export function ociErrorMessage (text: string): string | undefined {
  let doc: unknown
  try {
    doc = JSON.parse(text)
  } catch {
    return undefined
  }
  const errors = typeof doc === 'object' && doc !== null ? (doc as { errors?: unknown }).errors : undefined
  if (!Array.isArray(errors)) return undefined
  const messages = errors
    .map((e: unknown) => (typeof e === 'object' && e !== null && typeof (e as { message?: unknown }).message === 'string' ? (e as { message: string }).message.replace(/\s+/g, ' ').trim() : ''))
    .filter((m) => m !== '')
  return messages.length === 0 ? undefined : messages.join('; ')
}
