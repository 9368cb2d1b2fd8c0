// Layer 1, runtime: Node, its glibc libraries, /etc/passwd + /etc/group with the non-root user, /tmp, the data dir.
import { stat } from 'node:fs/promises'
import { join } from 'node:path'
import { APP_GID, APP_UID, DATA_DIR } from './constants.js'
import type { Entry } from './entries.js'
import type { LibFile } from './glibc-libs.js'
import { platformName, type Platform } from './platforms.js'

function etcFiles (): Entry[] {
  const text = (path: string, content: string): Entry => ({ path, type: 'file', mode: 0o644, content: Buffer.from(content) })
  return [
    text('/etc/passwd', [
      'root:x:0:0:root:/root:/sbin/nologin',
      `flotilla:x:${APP_UID}:${APP_GID}:flotilla:/home/flotilla:/sbin/nologin`,
      'nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin',
      '',
    ].join('\n')),
    text('/etc/group', ['root:x:0:', `flotilla:x:${APP_GID}:`, 'nogroup:x:65534:', ''].join('\n')),
    // glibc ≥ 2.34 has files and dns built in; without this file it would try dns before /etc/hosts.
    text('/etc/nsswitch.conf', 'passwd: files\ngroup: files\nhosts: files dns\n'),
  ]
}

export async function runtimeEntries (platform: Platform, nodeDir: string, libs: LibFile[]): Promise<Entry[]> {
  const entries: Entry[] = [
    ...etcFiles(),
    { path: '/tmp', type: 'directory', mode: 0o1777 },
    { path: '/root', type: 'directory', mode: 0o700 },
    { path: '/home/flotilla', type: 'directory', mode: 0o755, uid: APP_UID, gid: APP_GID },
    { path: DATA_DIR, type: 'directory', mode: 0o755, uid: APP_UID, gid: APP_GID },
  ]
  const file = async (path: string, source: string, mode: number): Promise<Entry> => ({ path, type: 'file', mode, source, size: (await stat(source)).size })
  entries.push(await file('/usr/local/bin/node', join(nodeDir, 'bin', 'node'), 0o755))
  entries.push(await file('/usr/local/share/doc/node/LICENSE', join(nodeDir, 'LICENSE'), 0o644))
  for (const lib of libs) entries.push(await file(lib.imagePath, lib.source, 0o755))
  if (!libs.some((l) => l.imagePath === platform.interpreter)) throw new Error(`no ELF interpreter for ${platformName(platform)}`)
  return entries
}
