/** Commander accumulator for repeatable options (`--registry a --registry b`). */
export function collectOption (value: string, previous: string[] = []): string[] {
  return [...previous, value]
}
