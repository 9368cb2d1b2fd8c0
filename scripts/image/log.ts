/** Progress on stderr (stdout carries only the archive's path). */
export function log (message: string): void {
  process.stderr.write(`build-image: ${message}\n`)
}
