import type { TagIndex, TagRecord } from './tag-index.js'

export function tagKey (registry: string, repository: string, tag: string): string {
  return `${registry}/${repository}:${tag}`
}

export function splitTagKey (key: string): { registry: string, repository: string, tag: string } {
  const slash = key.indexOf('/')
  const colon = key.lastIndexOf(':')
  return { registry: key.slice(0, slash), repository: key.slice(slash + 1, colon), tag: key.slice(colon + 1) }
}

/** Tags in a Map; FileTagIndex adds persistence on top of the same logic. */
export class MemoryTagIndex implements TagIndex {
  protected readonly records = new Map<string, TagRecord>()

  async get (registry: string, repository: string, tag: string): Promise<TagRecord | undefined> {
    return this.records.get(tagKey(registry, repository, tag))
  }

  async set (registry: string, repository: string, tag: string, record: TagRecord): Promise<void> {
    this.records.set(tagKey(registry, repository, tag), record)
  }

  async delete (registry: string, repository: string, tag: string): Promise<boolean> {
    return this.records.delete(tagKey(registry, repository, tag))
  }

  async list (registry: string, repository: string): Promise<string[]> {
    const prefix = `${registry}/${repository}:`
    const tags: string[] = []
    for (const key of this.records.keys()) {
      const rest = key.slice(prefix.length)
      if (key.startsWith(prefix) && !rest.includes(':')) tags.push(rest)
    }
    return tags.sort()
  }

  async * entries (): AsyncIterable<{ registry: string, repository: string, tag: string, record: TagRecord }> {
    for (const [key, record] of this.records) yield { ...splitTagKey(key), record }
  }
}
