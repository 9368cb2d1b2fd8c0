/**
 * What `GET /status/precache` answers and `flotilla precache status` prints: the JSON shape shared by the
 * agent and the CLI. Times are ISO 8601 strings; absent facts are null, never missing keys.
 */
export type PrecachePhase = 'Pending' | 'Pulling' | 'Ready' | 'Failed'

export const PRECACHE_PHASES: readonly PrecachePhase[] = ['Pending', 'Pulling', 'Ready', 'Failed']

export interface PrecacheImageStatus {
  /** The image as declared, normalised (`docker.io/library/busybox:1.36`); the raw text when it does not parse. */
  readonly ref: string
  /** The manifest (or index) digest the node holds or is pulling for it. */
  readonly digest: string | null
  readonly phase: PrecachePhase
  /** flotilla's pin is set on it (containerd's `io.cri-containerd.pinned` label, or the store's pin). */
  readonly pinned: boolean
  /** When the tag was last confirmed against the upstream or a peer (a digest reference: when first held). */
  readonly lastConfirmed: string | null
  /** Bytes of the image (containerd's size, or the blobs warmed into the store). */
  readonly bytes: number | null
  /** Why the last attempt failed, or why the tag could not be confirmed; null when all is well. */
  readonly error: string | null
}

export interface PrecacheSetStatus {
  readonly name: string
  /** Whether the set's nodeSelector matches this node's labels; a set that does not match lists no images. */
  readonly matches: boolean
  readonly refreshSeconds: number
  readonly images: readonly PrecacheImageStatus[]
}

export interface PrecacheStatus {
  /** The declared sets' file (`precache.file`), or null when none is configured. */
  readonly file: string | null
  /** Why the file's last version was not taken (the last good sets stay in force); null when it was. */
  readonly fileError: string | null
  /** When the sets in force were read. */
  readonly loadedAt: string | null
  /** `containerd`: images pulled through the node's CRI and pinned there; `store`: warmed into the agent's own store. */
  readonly mode: 'containerd' | 'store'
  /** The node's labels the sets were matched against; null while they are not known. */
  readonly nodeLabels: Readonly<Record<string, string>> | null
  readonly nodeLabelsError: string | null
  /**
   * Whether containerd and the kubelet honour the pin (containerd ≥ 1.6.25 / 1.7.10 reports it in CRI
   * ImageStatus; the kubelet needs ≥ 1.28.2). When they do not, a deleted image is pulled again at once.
   */
  readonly pin: {
    readonly honoured: boolean | null
    readonly containerdVersion: string | null
    readonly note: string | null
  }
  readonly sets: readonly PrecacheSetStatus[]
}
