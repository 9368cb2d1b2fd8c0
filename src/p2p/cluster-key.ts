import { randomBytes } from 'node:crypto'
import { P2pError } from './errors.js'

/** The libp2p private-network (pnet) key file format: three lines, the key as 64 hex characters. */
const PSK_TAG = '/key/swarm/psk/1.0.0/'
const PSK_CODEC = '/base16/'
const KEY_HEX_LENGTH = 64

/** A new random cluster key, as the text of a key file. Every node of a cluster must share it. */
export function generateClusterKey (): string {
  return `${PSK_TAG}\n${PSK_CODEC}\n${randomBytes(KEY_HEX_LENGTH / 2).toString('hex')}\n`
}

/**
 * Validates a cluster key file and returns it normalised (LF, lowercase hex) in the form libp2p's pnet
 * expects. Accepts CRLF, surrounding blank space and a trailing newline; anything else is a P2pError
 * that names the offending line.
 */
export function parseClusterKey (text: string | Uint8Array): Uint8Array {
  const s = typeof text === 'string' ? text : new TextDecoder('utf-8', { fatal: false }).decode(text)
  const lines = s.replace(/^\uFEFF/, '').trim().split(/\r\n|\r|\n/).map(line => line.trim())
  const expected = `expected 3 lines: "${PSK_TAG}", "${PSK_CODEC}" and ${KEY_HEX_LENGTH} hex characters`
  if (lines.length !== 3) {
    throw new P2pError('ERR_CLUSTER_KEY_INVALID', `invalid cluster key: ${expected}, got ${lines.length} line(s)`)
  }
  const [tag, codec, hex] = lines as [string, string, string]
  if (tag !== PSK_TAG) {
    throw new P2pError('ERR_CLUSTER_KEY_INVALID', `invalid cluster key: line 1 must be "${PSK_TAG}"`)
  }
  if (codec !== PSK_CODEC) {
    throw new P2pError('ERR_CLUSTER_KEY_INVALID', `invalid cluster key: line 2 must be "${PSK_CODEC}" (only base16 keys are supported)`)
  }
  if (hex.length !== KEY_HEX_LENGTH || !/^[0-9a-fA-F]+$/.test(hex)) {
    throw new P2pError('ERR_CLUSTER_KEY_INVALID', `invalid cluster key: line 3 must be ${KEY_HEX_LENGTH} hex characters (a 32-byte key), got ${hex.length} characters`)
  }
  return new TextEncoder().encode(`${PSK_TAG}\n${PSK_CODEC}\n${hex.toLowerCase()}`)
}
