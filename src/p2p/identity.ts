import { chmod, mkdir, readFile, stat, writeFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import { P2pError } from './errors.js'

export interface Identity {
  readonly privateKey: PrivateKey
  /** True when the file did not exist and a new key was written. */
  readonly created: boolean
  /** True when an existing file was readable by group or others (it is tightened to 0600). */
  readonly hadLoosePermissions: boolean
}

/**
 * Loads the node's Ed25519 key from `file` (libp2p protobuf encoding), or creates it with mode 0600 when
 * missing. A file that exists but does not hold a key is an error, never silently replaced: the peer id
 * is how other nodes know this one.
 */
export async function loadOrCreateIdentity (file: string): Promise<Identity> {
  const existing = await readIdentity(file)
  if (existing !== undefined) return existing
  const privateKey = await generateKeyPair('Ed25519')
  await mkdir(dirname(file), { recursive: true, mode: 0o700 })
  try {
    // 'wx': if another process created it meanwhile, use theirs rather than overwrite it
    await writeFile(file, privateKeyToProtobuf(privateKey), { mode: 0o600, flag: 'wx' })
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
      const raced = await readIdentity(file)
      if (raced !== undefined) return raced
    }
    throw err
  }
  return { privateKey, created: true, hadLoosePermissions: false }
}

async function readIdentity (file: string): Promise<Identity | undefined> {
  let bytes: Buffer
  try {
    bytes = await readFile(file)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
  let privateKey: PrivateKey
  try {
    privateKey = privateKeyFromProtobuf(bytes)
  } catch (err) {
    throw new P2pError('ERR_P2P_IDENTITY_INVALID', `identity file ${file} does not hold a libp2p private key; move it away to create a new identity (peer id)`, { cause: err })
  }
  if (privateKey.type !== 'Ed25519') {
    throw new P2pError('ERR_P2P_IDENTITY_INVALID', `identity file ${file} holds a ${privateKey.type} key; only Ed25519 is supported`)
  }
  const mode = (await stat(file)).mode & 0o777
  const hadLoosePermissions = (mode & 0o077) !== 0
  if (hadLoosePermissions) await chmod(file, 0o600)
  return { privateKey, created: false, hadLoosePermissions }
}
