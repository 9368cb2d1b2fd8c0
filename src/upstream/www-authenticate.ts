export interface AuthChallenge {
  /** Lowercased: `bearer`, `basic`. */
  readonly scheme: string
  /** Parameter names lowercased, values unquoted. */
  readonly params: Readonly<Record<string, string>>
}

const TOKEN_CHAR = /[!#$%&'*+.^_`|~0-9A-Za-z-]/
const TOKEN68 = /^[A-Za-z0-9._~+/-]+=*(?=\s*(?:,|$))/

/**
 * Parses `WWW-Authenticate` (RFC 9110 §11.6.1), including several challenges in one header or in several
 * headers. Malformed tails are dropped rather than thrown: the caller only needs a usable Bearer or Basic.
 */
export function parseWwwAuthenticate (header: string | readonly string[] | undefined): AuthChallenge[] {
  if (header === undefined) return []
  const text = typeof header === 'string' ? header : header.join(', ')
  const challenges: Array<{ scheme: string, params: Record<string, string> }> = []
  let i = 0

  const skip = (chars: string): void => {
    while (i < text.length && chars.includes(text[i] as string)) i++
  }
  const readToken = (): string => {
    const start = i
    while (i < text.length && TOKEN_CHAR.test(text[i] as string)) i++
    return text.slice(start, i)
  }
  const readQuoted = (): string => {
    let value = ''
    for (i++; i < text.length && text[i] !== '"'; i++) {
      if (text[i] === '\\' && i + 1 < text.length) i++
      value += text[i]
    }
    i++
    return value
  }

  while (i < text.length) {
    skip(' \t,')
    const name = readToken()
    if (name === '') break
    skip(' \t')
    // `name=` starts a parameter; a bare name starts the next challenge (token68 credentials are not used here).
    if (text[i] === '=' && text[i + 1] !== '=') {
      i++
      skip(' \t')
      const value = text[i] === '"' ? readQuoted() : readToken()
      const current = challenges.at(-1)
      if (current !== undefined) current.params[name.toLowerCase()] = value
    } else {
      challenges.push({ scheme: name.toLowerCase(), params: {} })
      // Skip a token68 (e.g. `Negotiate abc==`) so it is not read as a scheme.
      const token68 = TOKEN68.exec(text.slice(i))
      if (token68 !== null) i += token68[0].length
    }
  }
  return challenges
}
