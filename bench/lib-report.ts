// What every benchmark of ours prints and writes: the machine, the command, a Markdown table.
import { mkdir, writeFile } from 'node:fs/promises'
import { availableParallelism, cpus, loadavg, release, totalmem } from 'node:os'
import { join, relative } from 'node:path'
import { ROOT } from './lib-dist-agent.js'

export const RESULTS_DIR = join(ROOT, 'bench', 'results')

export interface Machine {
  readonly nproc: number
  readonly cpuModel: string
  readonly memGiB: number
  readonly kernel: string
  readonly node: string
  /** 1-minute load average when the run started. */
  readonly load1: number
}

export function describeMachine (): Machine {
  return {
    nproc: availableParallelism(),
    cpuModel: cpus()[0]?.model.trim() ?? 'unknown CPU',
    memGiB: Math.round(totalmem() / 2 ** 30),
    kernel: release(),
    node: process.version,
    load1: loadavg()[0] ?? 0,
  }
}

/** The command line this process was started with, as a reader would type it. */
export function invocation (script: string): string {
  const args = process.argv.slice(2)
  return ['npx', 'tsx', relative(ROOT, script), ...args].join(' ')
}

export function markdownTable (header: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
  const line = (cells: readonly string[]): string => `| ${cells.join(' | ')} |`
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n')
}

export interface ReportOptions {
  readonly title: string
  readonly machine: Machine
  readonly command: string
  readonly startedAt: Date
  /** Extra bullet lines under the machine description. */
  readonly facts: readonly string[]
  readonly table: string
  /** Paragraphs after the table. */
  readonly notes: readonly string[]
}

export function renderReport (o: ReportOptions): string {
  const m = o.machine
  const seconds = Math.round((Date.now() - o.startedAt.getTime()) / 1000)
  return [
    `# ${o.title}`,
    '',
    `- Date: ${o.startedAt.toISOString()}`,
    `- Machine: nproc ${m.nproc} (${m.cpuModel}), ${m.memGiB} GiB RAM, Linux ${m.kernel}; load average ${m.load1.toFixed(2)} at start`,
    `- Node ${m.node}; flotilla run from dist/ (\`node dist/cli/main.js serve\`)`,
    `- Command: \`${o.command}\` (run took ${seconds} s)`,
    ...o.facts.map((f) => `- ${f}`),
    '',
    o.table,
    '',
    ...o.notes.flatMap((n) => [n, '']),
  ].join('\n')
}

/** Writes `bench/results/<file>` and returns its path. */
export async function writeResult (file: string, text: string): Promise<string> {
  await mkdir(RESULTS_DIR, { recursive: true })
  const path = join(RESULTS_DIR, file)
  await writeFile(path, text)
  return path
}

export function median (values: readonly number[]): number {
  if (values.length === 0) return NaN
  const sorted = [...values].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[mid] ?? NaN : ((sorted[mid - 1] ?? NaN) + (sorted[mid] ?? NaN)) / 2
}

export const MIB = 1024 * 1024

export function formatMiB (bytes: number): string {
  return (bytes / MIB).toFixed(0)
}
