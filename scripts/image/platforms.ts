// The platforms the image is built for, what Node needs on each, and which of them a build makes
// (FLOTILLA_IMAGE_PLATFORMS).

export interface Platform {
  /** OCI `architecture` */
  readonly architecture: 'amd64' | 'arm64'
  readonly variant?: string
  /** Node's and npm's name for the CPU (`process.arch`, `npm --cpu`) */
  readonly nodeArch: 'x64' | 'arm64'
  /** Debian's architecture and multiarch triplet */
  readonly debArch: string
  readonly triplet: string
  /** The ELF interpreter (PT_INTERP) Node's binary asks for. */
  readonly interpreter: string
}

export const PLATFORMS: readonly Platform[] = [
  { architecture: 'amd64', nodeArch: 'x64', debArch: 'amd64', triplet: 'x86_64-linux-gnu', interpreter: '/lib64/ld-linux-x86-64.so.2' },
  { architecture: 'arm64', variant: 'v8', nodeArch: 'arm64', debArch: 'arm64', triplet: 'aarch64-linux-gnu', interpreter: '/lib/ld-linux-aarch64.so.1' },
]

/** DT_NEEDED of Node 20's official linux builds (`ldd` confirms it on the build machine's platform). */
export const NODE_NEEDED = ['libdl.so.2', 'libstdc++.so.6', 'libm.so.6', 'libgcc_s.so.1', 'libpthread.so.0', 'libc.so.6']
/** Debian 12 packages holding NODE_NEEDED and the interpreter. */
export const GLIBC_DEBS = ['libc6', 'libstdc++6', 'libgcc-s1']

export const platformName = (p: Platform): string => `linux/${p.architecture}${p.variant === undefined ? '' : `/${p.variant}`}`

export function selectedPlatforms (host: Platform): Platform[] {
  const raw = process.env.FLOTILLA_IMAGE_PLATFORMS
  if (raw === undefined || raw.trim() === '') return [host, ...PLATFORMS.filter((p) => p !== host)]
  const wanted = raw.split(',').map((s) => s.trim()).filter(Boolean)
  const found = wanted.map((w) => {
    const p = PLATFORMS.find((q) => w === `linux/${q.architecture}` || w === platformName(q))
    if (p === undefined) throw new Error(`FLOTILLA_IMAGE_PLATFORMS: unknown platform ${w} (known: ${PLATFORMS.map(platformName).join(', ')})`)
    return p
  })
  return [...new Set(found)]
}
