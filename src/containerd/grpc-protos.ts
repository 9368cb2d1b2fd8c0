import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import * as grpc from '@grpc/grpc-js'
import * as protoLoader from '@grpc/proto-loader'

/**
 * Where the .proto files live. tsx runs this module from `src/containerd/`, so they sit next to it; a `tsc`
 * build runs it from `dist/containerd/` and copies no assets, so the sources' directory at
 * `<package root>/src/containerd/protos/` is used instead (a published package must ship it).
 */
export function protosDir (): string {
  const candidates = [
    new URL('./protos/', import.meta.url),
    new URL('../../src/containerd/protos/', import.meta.url),
    new URL('../../../src/containerd/protos/', import.meta.url),
  ]
  for (const url of candidates) {
    const dir = fileURLToPath(url)
    if (existsSync(`${dir}containerd/types/descriptor.proto`)) return dir
  }
  throw new Error(`containerd .proto files not found (looked in ${candidates.map(u => fileURLToPath(u)).join(', ')})`)
}

const PROTO_FILES = [
  'containerd/types/descriptor.proto',
  'containerd/services/images/v1/images.proto',
  'containerd/services/content/v1/content.proto',
  'containerd/services/events/v1/events.proto',
  'containerd/services/version/v1/version.proto',
  'containerd/events/image.proto',
  'containerd/events/content.proto',
  'runtime/v1/api.proto',
]

/** Field names stay snake_case as in the .proto files; int64 becomes number (sizes stay below 2^53). */
const LOADER_OPTIONS: protoLoader.Options = { keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true }

export interface ContainerdServices {
  readonly Images: grpc.ServiceClientConstructor
  readonly Content: grpc.ServiceClientConstructor
  readonly Events: grpc.ServiceClientConstructor
  readonly Version: grpc.ServiceClientConstructor
  readonly CriImage: grpc.ServiceClientConstructor
  readonly CriRuntime: grpc.ServiceClientConstructor
}

let loaded: ContainerdServices | undefined

/** Loads the service definitions once per process (they are immutable; loading takes a few ms). */
export function loadServices (): ContainerdServices {
  if (loaded !== undefined) return loaded
  const dir = protosDir()
  const definition = protoLoader.loadSync(PROTO_FILES, { ...LOADER_OPTIONS, includeDirs: [dir] })
  const root = grpc.loadPackageDefinition(definition)
  const service = (path: string): grpc.ServiceClientConstructor => {
    let node: unknown = root
    for (const part of path.split('.')) node = (node as Record<string, unknown> | undefined)?.[part]
    if (typeof node !== 'function') throw new Error(`gRPC service ${path} missing from the loaded protos`)
    return node as grpc.ServiceClientConstructor
  }
  loaded = {
    Images: service('containerd.services.images.v1.Images'),
    Content: service('containerd.services.content.v1.Content'),
    Events: service('containerd.services.events.v1.Events'),
    Version: service('containerd.services.version.v1.Version'),
    CriImage: service('runtime.v1.ImageService'),
    CriRuntime: service('runtime.v1.RuntimeService'),
  }
  return loaded
}
