export interface Platform {
  readonly os: string
  readonly architecture: string
  readonly variant?: string
}

const ARCH_ALIASES: Record<string, string> = { x86_64: 'amd64', aarch64: 'arm64', armhf: 'arm', armel: 'arm' }
const DEFAULT_VARIANT: Record<string, string> = { arm64: 'v8', arm: 'v7' }

export function normalizePlatform (p: Platform): Platform {
  const architecture = ARCH_ALIASES[p.architecture] ?? p.architecture
  const variant = p.variant ?? DEFAULT_VARIANT[architecture]
  return { os: p.os.toLowerCase(), architecture, ...(variant === undefined ? {} : { variant }) }
}

/** Parses `os/arch[/variant]`. */
export function parsePlatform (input: string): Platform {
  const parts = input.split('/')
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => p === '')) {
    throw new TypeError(`invalid platform ${JSON.stringify(input)}: expected os/arch[/variant]`)
  }
  const [os, architecture, variant] = parts as [string, string, string?]
  return normalizePlatform({ os, architecture, ...(variant === undefined ? {} : { variant }) })
}

/** Whether an index entry's platform satisfies a wanted one (variant only compared when both name one). */
export function platformMatches (wanted: Platform, candidate: Platform): boolean {
  const w = normalizePlatform(wanted)
  const c = normalizePlatform(candidate)
  if (w.os !== c.os || w.architecture !== c.architecture) return false
  return w.variant === undefined || c.variant === undefined || w.variant === c.variant
}

export function formatPlatform (p: Platform): string {
  return [p.os, p.architecture, p.variant].filter((x) => x !== undefined).join('/')
}
