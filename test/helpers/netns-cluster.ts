import { runCommand, runCommandChecked, type CommandResult } from './run-command.js'
import { onExit } from './on-exit.js'
import { execFileSync } from 'node:child_process'

/**
 * Test hosts in network namespaces this test creates, joined by a bridge that itself lives in a namespace
 * of ours: every address used exists only inside them. Host i gets 10.213.<net>.<i>/24 on its eth0.
 */
export interface NetnsHost {
  readonly ns: string
  readonly ip: string
  /** Runs a command inside the namespace. */
  exec (cmd: string, args: readonly string[], timeoutMs?: number): Promise<CommandResult>
}

export interface NetnsCluster {
  readonly hosts: readonly NetnsHost[]
  /** The host created under `name` (one of createNetnsCluster's names); throws for any other name. */
  host (name: string): NetnsHost
  /** `ip netns exec <ns>` prefix for spawning long-running processes. */
  wrap (host: NetnsHost, cmd: string, args: readonly string[]): [string, string[]]
  /** Caps a host's egress with tc tbf (e.g. '100mbit'). */
  shape (host: NetnsHost, rate: string): Promise<void>
  destroy (): Promise<void>
}

export async function createNetnsCluster (names: readonly string[]): Promise<NetnsCluster> {
  const id = `${process.pid % 10000}${Math.floor(Math.random() * 100)}`
  const net = 1 + (process.pid % 250)
  const sw = `flsw${id}`
  const created: string[] = []
  const ip = async (...args: string[]): Promise<void> => { await runCommandChecked('ip', args, { timeoutMs: 10_000 }) }
  const destroySync = (): void => {
    for (const ns of created) {
      try { execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' }) } catch { /* already gone */ }
    }
  }
  const unregister = onExit(destroySync)
  try {
    await ip('netns', 'add', sw)
    created.push(sw)
    await ip('netns', 'exec', sw, 'ip', 'link', 'add', 'br0', 'type', 'bridge')
    await ip('netns', 'exec', sw, 'ip', 'link', 'set', 'br0', 'up')
    const hosts: NetnsHost[] = []
    for (const [i, name] of names.entries()) {
      const ns = `fl${name}${id}`
      const addr = `10.213.${net}.${i + 1}`
      await ip('netns', 'add', ns)
      created.push(ns)
      await ip('link', 'add', `v${id}h${i}`, 'netns', ns, 'type', 'veth', 'peer', 'name', `p${i}`, 'netns', sw)
      await ip('netns', 'exec', ns, 'ip', 'link', 'set', `v${id}h${i}`, 'name', 'eth0')
      await ip('netns', 'exec', ns, 'ip', 'addr', 'add', `${addr}/24`, 'dev', 'eth0')
      await ip('netns', 'exec', ns, 'ip', 'link', 'set', 'eth0', 'up')
      await ip('netns', 'exec', ns, 'ip', 'link', 'set', 'lo', 'up')
      await ip('netns', 'exec', sw, 'ip', 'link', 'set', `p${i}`, 'master', 'br0')
      await ip('netns', 'exec', sw, 'ip', 'link', 'set', `p${i}`, 'up')
      hosts.push({
        ns, ip: addr,
        exec: async (cmd, args, timeoutMs = 60_000) => await runCommand('ip', ['netns', 'exec', ns, cmd, ...args], { timeoutMs }),
      })
    }
    return {
      hosts,
      host: (name) => {
        const h = hosts[names.indexOf(name)]
        if (h === undefined) throw new Error(`no netns host named ${JSON.stringify(name)} (hosts: ${names.join(', ')})`)
        return h
      },
      wrap: (host, cmd, args) => ['ip', ['netns', 'exec', host.ns, cmd, ...args]],
      shape: async (host, rate) => {
        await ip('netns', 'exec', host.ns, 'tc', 'qdisc', 'replace', 'dev', 'eth0', 'root', 'tbf', 'rate', rate, 'burst', '256kb', 'latency', '100ms')
      },
      destroy: async () => {
        unregister()
        for (const ns of created.reverse()) await runCommand('ip', ['netns', 'del', ns], { timeoutMs: 10_000 })
      },
    }
  } catch (err) {
    unregister()
    destroySync()
    throw err
  }
}
