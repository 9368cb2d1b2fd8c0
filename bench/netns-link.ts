import { execFileSync } from 'node:child_process'
import { onExit } from '../test/helpers/on-exit.js'
import { runCommand, runCommandChecked } from '../test/helpers/run-command.js'
import { isAlive } from '../src/store/data-dir-lock.js'

const PREFIX = 'flb-up-'
const COMMAND_TIMEOUT_MS = 10_000

export interface NetnsLink {
  /** The namespace the bench created, `flb-up-<pid>`. */
  readonly netns: string
  /** Link-local address of the veth end in the root namespace. */
  readonly hostAddress: string
  /** Link-local address of the veth end inside the namespace: servers there listen on it. */
  readonly nsAddress: string
  /** Caps both directions of the link with a token bucket (`tc ... tbf rate RATE`); undefined removes the cap. */
  setRate (rate: string | undefined): Promise<void>
  /** Deletes the veth pair and the namespace; idempotent. */
  destroy (): Promise<void>
}

async function ip (args: readonly string[]): Promise<string> {
  return (await runCommandChecked('ip', args, { timeoutMs: COMMAND_TIMEOUT_MS })).stdout
}


/** Removes namespaces (and their veth pairs) left by bench runs that died before cleaning up. */
export async function removeStaleLinks (): Promise<string[]> {
  const removed: string[] = []
  for (const line of (await ip(['netns', 'list'])).split('\n')) {
    const name = line.split(' ')[0] ?? ''
    const m = new RegExp(`^${PREFIX}(\\d+)$`).exec(name)
    if (m === null || isAlive(Number(m[1]))) continue
    await runCommand('ip', ['link', 'del', `flbh${m[1]}`], { timeoutMs: COMMAND_TIMEOUT_MS })
    await runCommand('ip', ['netns', 'del', name], { timeoutMs: COMMAND_TIMEOUT_MS })
    removed.push(name)
  }
  return removed
}

/** A /30 in 169.254.0.0/16 (link-local: never routed, exists only on our veth) not used on this host yet. */
async function pickSubnet (): Promise<number> {
  const used = await ip(['-o', '-4', 'addr', 'show'])
  for (let i = 0; i < 200; i++) {
    const octet = 16 + ((process.pid + i) % 200)
    if (!used.includes(` 169.254.${octet}.`)) return octet
  }
  throw new Error('no free 169.254.x.0/30 subnet for the bench link')
}

/**
 * Creates network namespace `flb-up-<pid>` joined to the root namespace by a veth pair with link-local
 * addresses. Everything is removed by destroy(), or synchronously at process exit or on a signal.
 */
export async function createNetnsLink (): Promise<NetnsLink> {
  const netns = `${PREFIX}${process.pid}`
  const hostDev = `flbh${process.pid}`
  const nsDev = `flbn${process.pid}`
  const octet = await pickSubnet()
  const hostAddress = `169.254.${octet}.1`
  const nsAddress = `169.254.${octet}.2`

  let isDestroyed = false
  const unregister = onExit(() => {
    // Deleting one end of a veth deletes both; the namespace goes once its processes are gone.
    for (const args of [['link', 'del', hostDev], ['netns', 'del', netns]]) {
      try { execFileSync('ip', args, { stdio: 'ignore', timeout: COMMAND_TIMEOUT_MS }) } catch { /* already gone */ }
    }
  })
  const destroy = async (): Promise<void> => {
    if (isDestroyed) return
    isDestroyed = true
    await runCommand('ip', ['link', 'del', hostDev], { timeoutMs: COMMAND_TIMEOUT_MS })
    await runCommand('ip', ['netns', 'del', netns], { timeoutMs: COMMAND_TIMEOUT_MS })
    unregister()
  }

  try {
    await ip(['netns', 'add', netns])
    await ip(['link', 'add', hostDev, 'type', 'veth', 'peer', 'name', nsDev])
    await ip(['link', 'set', nsDev, 'netns', netns])
    await ip(['addr', 'add', `${hostAddress}/30`, 'dev', hostDev])
    await ip(['link', 'set', hostDev, 'up'])
    await ip(['-n', netns, 'addr', 'add', `${nsAddress}/30`, 'dev', nsDev])
    await ip(['-n', netns, 'link', 'set', nsDev, 'up'])
    await ip(['-n', netns, 'link', 'set', 'lo', 'up'])
  } catch (err) {
    await destroy()
    throw err
  }

  const tc = async (inNamespace: boolean, args: readonly string[], isChecked: boolean): Promise<void> => {
    const [cmd, argv] = inNamespace ? ['ip', ['netns', 'exec', netns, 'tc', ...args]] : ['tc', [...args]]
    if (isChecked) await runCommandChecked(cmd, argv, { timeoutMs: COMMAND_TIMEOUT_MS })
    else await runCommand(cmd, argv, { timeoutMs: COMMAND_TIMEOUT_MS })
  }

  return {
    netns,
    hostAddress,
    nsAddress,
    async setRate (rate) {
      for (const [inNamespace, dev] of [[false, hostDev], [true, nsDev]] as const) {
        if (rate === undefined) {
          await tc(inNamespace, ['qdisc', 'del', 'dev', dev, 'root'], false) // none there is fine
        } else {
          // Egress of each end: the namespace side shapes downloads, the host side the requests.
          await tc(inNamespace, ['qdisc', 'replace', 'dev', dev, 'root', 'tbf', 'rate', rate, 'burst', '256kb', 'latency', '50ms'], true)
        }
      }
    },
    destroy,
  }
}
