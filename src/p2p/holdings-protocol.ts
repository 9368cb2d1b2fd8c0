import type { Connection, Libp2p, PeerId, Stream } from '@libp2p/interface'
import { lpStream, type LengthPrefixedStream } from '@libp2p/utils'
import { P2pError } from './errors.js'

/**
 * `/<prefix>/holdings/1.0.0`: the dialer reads the keys the other node announces, as length-prefixed
 * chunks of newline-separated keys ended by an empty chunk. A node that joins a small cluster asks each
 * peer once, so it knows at once what was announced before it came (Kademlia only hands records to the
 * nodes closest to a key at the time of the announcement).
 */
export function holdingsProtocol (prefix: string): string {
  return `${prefix}/holdings/1.0.0`
}

const CHUNK_BYTES = 64 * 1024
const MAX_KEY_LENGTH = 1024

export interface HoldingsLimits {
  /** Keys read at most; a peer that sends more is refused. */
  readonly maxKeys: number
}

/** Splits keys into chunks of at most CHUNK_BYTES (a longer key is a chunk of its own), then the empty end chunk. */
export function encodeHoldings (keys: Iterable<string>): Uint8Array[] {
  const encoder = new TextEncoder()
  const chunks: Uint8Array[] = []
  let batch: string[] = []
  let size = 0
  for (const key of keys) {
    if (size > 0 && size + key.length + 1 > CHUNK_BYTES) {
      chunks.push(encoder.encode(batch.join('\n')))
      batch = []
      size = 0
    }
    batch.push(key)
    size += key.length + 1
  }
  if (batch.length > 0) chunks.push(encoder.encode(batch.join('\n')))
  chunks.push(new Uint8Array(0))
  return chunks
}

/** The keys of one chunk; throws a P2pError naming the peer on anything that is not a key. */
export function decodeHoldingsChunk (peer: string, bytes: Uint8Array): string[] {
  let text: string
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes)
  } catch (err) {
    throw new P2pError('ERR_PEER_HOLDINGS_INVALID', `peer ${peer} sent keys that are not UTF-8`, { cause: err })
  }
  const keys = text.split('\n')
  for (const key of keys) {
    if (key.length === 0 || key.length > MAX_KEY_LENGTH || /\s/.test(key)) {
      throw new P2pError('ERR_PEER_HOLDINGS_INVALID', `peer ${peer} sent an invalid key`)
    }
  }
  return keys
}

/** A stream that carries key lists: length-prefixed chunks of at most CHUNK_BYTES plus a key. */
export function keyListStream (stream: Stream): LengthPrefixedStream<Stream> {
  return lpStream(stream, { maxDataLength: CHUNK_BYTES + MAX_KEY_LENGTH })
}

/** Writes the keys as chunks, then the empty end chunk. */
export async function writeKeys (lp: LengthPrefixedStream<Stream>, keys: Iterable<string>, signal: AbortSignal): Promise<void> {
  for (const chunk of encodeHoldings(keys)) await lp.write(chunk, { signal })
}

/** Reads chunks up to the empty end chunk; a peer that sends more than `limits.maxKeys` keys is refused. */
export async function readKeys (lp: LengthPrefixedStream<Stream>, peer: PeerId, limits: HoldingsLimits, signal: AbortSignal): Promise<string[]> {
  const keys: string[] = []
  while (true) {
    const chunk = await lp.read({ signal })
    if (chunk.byteLength === 0) return keys
    for (const key of decodeHoldingsChunk(peer.toString(), chunk.subarray())) keys.push(key)
    if (keys.length > limits.maxKeys) throw new P2pError('ERR_PEER_HOLDINGS_INVALID', `peer ${peer.toString()} sent more than ${limits.maxKeys} keys`)
  }
}

/** The server side: answers every stream with the keys `current()` returns at that moment. */
export function createHoldingsHandler (current: () => Iterable<string>, timeoutMs: number): (stream: Stream, connection: Connection) => Promise<void> {
  return async (stream) => {
    const signal = AbortSignal.timeout(timeoutMs)
    try {
      await writeKeys(keyListStream(stream), current(), signal)
      await stream.close({ signal })
    } catch (err) {
      stream.abort(err instanceof Error ? err : new Error(String(err)))
    }
  }
}

/** The client side: opens a stream to a connected `peer` and reads the keys it announces. */
export async function requestHoldings (libp2p: Libp2p, protocol: string, peer: PeerId, signal: AbortSignal, limits: HoldingsLimits): Promise<string[]> {
  const stream = await libp2p.dialProtocol(peer, protocol, { signal })
  try {
    const keys = await readKeys(keyListStream(stream), peer, limits, signal)
    await stream.close({ signal })
    return keys
  } catch (err) {
    stream.abort(err instanceof Error ? err : new Error(String(err)))
    throw err
  }
}
