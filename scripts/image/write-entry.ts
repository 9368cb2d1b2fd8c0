// One entry into a reproducible tar: fixed mtime, uid/gid 0 unless the entry says otherwise, no user/group names.
import { createReadStream } from 'node:fs'
import type { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import type { Header, Pack } from 'tar-stream'
import type { Entry } from './entries.js'

export async function writeEntry (pack: Pack, entry: Entry, mtime: Date): Promise<void> {
  const common = { name: entry.type === 'directory' ? `${entry.path}/` : entry.path, mtime, uid: 0, gid: 0, uname: '', gname: '' }
  const add = async (header: Partial<Header> & { name: string }, body?: Buffer | Readable): Promise<void> => {
    await new Promise<void>((resolve, reject) => {
      const done = (err?: Error | null): void => { if (err) reject(err); else resolve() }
      if (body === undefined) {
        pack.entry(header, done)
        return
      }
      if (Buffer.isBuffer(body)) {
        pack.entry(header, body, done)
        return
      }
      const sink = pack.entry(header, done)
      pipeline(body, sink).catch(reject)
    })
  }
  switch (entry.type) {
    case 'directory':
      await add({ ...common, type: 'directory', mode: entry.mode, uid: entry.uid ?? 0, gid: entry.gid ?? 0 })
      break
    case 'symlink':
      await add({ ...common, type: 'symlink', mode: 0o777, linkname: entry.target })
      break
    case 'file':
      if ('content' in entry) {
        await add({ ...common, type: 'file', mode: entry.mode, size: entry.content.length }, entry.content)
      } else {
        // The size is taken when listing; a file that changes meanwhile makes tar-stream fail, not lie.
        await add({ ...common, type: 'file', mode: entry.mode, size: entry.size }, createReadStream(entry.source, { highWaterMark: 1 << 20 }))
      }
      break
  }
}
