// What the OCI layout's blobs are, as its descriptors need them.

export interface Blob {
  readonly digest: string
  readonly size: number
}

export interface Layer extends Blob {
  /** sha256 of the uncompressed tar (the config's `rootfs.diff_ids`). */
  readonly diffId: string
  readonly name: string
  readonly uncompressedSize: number
}
