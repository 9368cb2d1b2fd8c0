/**
 * containerd event envelopes and the few payloads flotilla acts on. The payload is a protobuf `Any`; the
 * messages we read (ImageCreate/Update/Delete, ContentCreate/Delete) all carry their key as field 1, so a
 * small wire reader decodes them without a protobuf runtime.
 */

export interface ContainerdEnvelope {
  readonly namespace: string
  readonly topic: string
  readonly timestamp?: Date
  /** e.g. `containerd.services.images.v1.ImageCreate` (containerd writes no URL prefix). */
  readonly typeUrl: string
  readonly payload: Buffer
}

export type ContainerdEvent =
  | { readonly kind: 'image-create' | 'image-update' | 'image-delete', readonly namespace: string, readonly name: string }
  | { readonly kind: 'content-create', readonly namespace: string, readonly digest: string, readonly size?: number }
  | { readonly kind: 'content-delete', readonly namespace: string, readonly digest: string }

const IMAGE_TOPICS: Record<string, 'image-create' | 'image-update' | 'image-delete'> = {
  '/images/create': 'image-create',
  '/images/update': 'image-update',
  '/images/delete': 'image-delete',
}

/** Interprets an envelope by topic; undefined for topics flotilla ignores or payloads it cannot read. */
export function parseContainerdEvent (envelope: ContainerdEnvelope): ContainerdEvent | undefined {
  const { namespace, topic, payload } = envelope
  const imageKind = IMAGE_TOPICS[topic]
  try {
    if (imageKind !== undefined) {
      const name = readFields(payload).strings.get(1)
      return name === undefined || name === '' ? undefined : { kind: imageKind, namespace, name }
    }
    if (topic === '/content/delete' || topic === '/content/create') {
      const fields = readFields(payload)
      const digest = fields.strings.get(1)
      if (digest === undefined || digest === '') return undefined
      if (topic === '/content/delete') return { kind: 'content-delete', namespace, digest }
      const size = fields.varints.get(2)
      return { kind: 'content-create', namespace, digest, ...(size === undefined ? {} : { size }) }
    }
  } catch {
    return undefined
  }
  return undefined
}

interface Fields {
  /** Length-delimited fields decoded as UTF-8 (last occurrence wins). */
  readonly strings: Map<number, string>
  readonly varints: Map<number, number>
}

/** Reads the top-level fields of a protobuf message; throws RangeError on malformed input. */
export function readFields (buf: Uint8Array): Fields {
  const strings = new Map<number, string>()
  const varints = new Map<number, number>()
  let pos = 0
  const varint = (): number => {
    let result = 0
    let shift = 0
    for (;;) {
      if (pos >= buf.length) throw new RangeError('truncated varint')
      const byte = buf[pos++] as number
      // Multiplication instead of shifts: stays exact up to 2^53.
      result += (byte & 0x7f) * 2 ** shift
      if ((byte & 0x80) === 0) return result
      shift += 7
      if (shift > 63) throw new RangeError('varint too long')
    }
  }
  const skip = (n: number): void => {
    if (pos + n > buf.length) throw new RangeError('truncated field')
    pos += n
  }
  while (pos < buf.length) {
    const key = varint()
    const field = Math.floor(key / 8)
    const wireType = key % 8
    switch (wireType) {
      case 0: varints.set(field, varint()); break
      case 1: skip(8); break
      case 2: {
        const length = varint()
        const start = pos
        skip(length)
        strings.set(field, Buffer.from(buf.buffer, buf.byteOffset + start, length).toString('utf8'))
        break
      }
      case 5: skip(4); break
      default: throw new RangeError(`unsupported wire type ${wireType}`)
    }
  }
  return { strings, varints }
}
