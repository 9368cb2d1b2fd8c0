import { z } from 'zod'
import { duration, endpoint, hostPort, labelList, nonEmpty, percent, registryName, size } from './option-types.js'
import { mergeRegistryPairs, registriesSchema } from './registries.js'
import { option } from './option.js'

/**
 * Every setting of `flotilla serve`, declared once: the file schema, the flags, the environment variables
 * and the README's configuration table (`npm run docs:config`) are derived from this list. The order is the
 * order of the table and of `--help`; a dotted name puts the option in a section of the file.
 */
/** A region of the redirector's table. */
const regionSchema = z.strictObject({
  name: z.string().regex(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/, 'expected a lowercase name, e.g. eu-west-1a'),
  cidrs: z.array(nonEmpty).min(1),
  blobBase: endpoint,
})

export const OPTIONS = [
  option('role', z.enum(['standalone', 'agent', 'mirror', 'redirector']), {
    env: 'FLOTILLA_ROLE', flag: '--role <role>',
    help: 'standalone, agent (the node agent), mirror (a central cache clients authenticate to) or redirector (manifests from the origin, blobs redirected to the nearest region); unset, agent when containerd or p2p is configured, else standalone',
  }),
  option('listen', hostPort, {
    default: '127.0.0.1:5000', env: 'FLOTILLA_LISTEN', flag: '-l, --listen <host:port>',
    help: 'registry API address',
  }),
  option('dataDir', nonEmpty, {
    default: './flotilla-data', env: 'FLOTILLA_DATA_DIR', flag: '-d, --data-dir <dir>',
    help: 'where blobs, the tag index and the p2p identity are kept',
  }),
  option('defaultRegistry', registryName, {
    default: 'docker.io', env: 'FLOTILLA_DEFAULT_REGISTRY', flag: '--default-registry <name>',
    help: 'registry for requests without ?ns=',
  }),
  option('logLevel', z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']), {
    default: 'info', env: 'FLOTILLA_LOG_LEVEL', flag: '--log-level <level>',
    help: 'fatal, error, warn, info, debug (one line per request), trace or silent',
  }),
  option('credentialsFile', z.string(), {
    env: 'FLOTILLA_CREDENTIALS_FILE', flag: '--credentials-file <file>',
    help: 'docker config.json with upstream credentials',
  }),
  option('tagTTL', duration, {
    default: '5m',
    help: 'revalidate a tag with its upstream after this (per registry: registries.NAME.tagTTL)',
  }),
  option('shutdownTimeout', duration, {
    default: '20s',
    help: 'on SIGTERM, how long running responses may take before their connections are closed',
  }),
  option('firstByteTimeout', duration, {
    default: '5s', env: 'FLOTILLA_FIRST_BYTE_TIMEOUT', flag: '--first-byte-timeout <duration>',
    help: 'how long a client waits for its first byte, or for an error it can fall back on (its next host)',
  }),
  option('stallTimeout', duration, {
    default: '5s', env: 'FLOTILLA_STALL_TIMEOUT', flag: '--stall-timeout <duration>',
    help: 'how long a stream may make no progress before it is resumed from another source or cut',
  }),
  option('zeroCopy', z.enum(['auto', 'off']), {
    default: 'auto', env: 'FLOTILLA_ZERO_COPY', flag: '--zero-copy <auto|off>',
    help: 'blobs served from files: auto sends them with sendfile(2) through the native addon when it is built (plain HTTP, Linux); off copies every byte through JavaScript',
  }),
  option('metricsListen', hostPort, {
    env: 'FLOTILLA_METRICS_LISTEN', flag: '--metrics-listen <host:port>',
    help: 'a second listener serving /metrics, /healthz and /readyz; unset, /metrics answers loopback clients only',
  }),
  option('tls.cert', nonEmpty, {
    isRequired: true, flag: '--tls-cert <file>',
    help: 'serve HTTPS with this certificate (tls.cert and tls.key go together)',
  }),
  option('tls.key', nonEmpty, {
    isRequired: true, flag: '--tls-key <file>',
    help: 'key of tls.cert',
  }),
  option('auth.htpasswd', nonEmpty, {
    env: 'FLOTILLA_HTPASSWD', flag: '--htpasswd <file>',
    help: 'mirror role: HTTP Basic users, bcrypt entries (htpasswd -B); the file is read again when it changes',
  }),
  option('auth.allowCidrs', z.array(nonEmpty), {
    default: [], env: 'FLOTILLA_ALLOW_CIDRS', flag: '--allow-cidr <cidr>', isList: true,
    help: 'mirror role: clients from these networks need no credentials',
  }),
  option('auth.anonymous', z.boolean(), {
    default: false,
    help: 'mirror role: serve every client without authentication',
  }),
  option('redirect.origin', endpoint, {
    help: 'redirector role: the source of truth (manifests, tags, and blobs no region has)',
  }),
  option('redirect.regions', z.array(regionSchema), {
    default: [],
    help: 'redirector role: [{ name, cidrs, blobBase }]; a client goes to the region with the longest prefix holding its address (the file is re-read when it changes)',
  }),
  option('redirect.trustedProxies', z.array(nonEmpty), {
    default: [],
    help: 'redirector role: X-Forwarded-For is believed only from these networks (its right-most hop not among them is the client)',
  }),
  option('redirect.existenceTTL', duration, { default: '10m', help: 'redirector role: how long a region is known to have a blob' }),
  option('redirect.missTTL', duration, { default: '30s', help: 'redirector role: how long a region is known to lack a blob' }),
  option('redirect.checkTimeout', duration, { default: '1s', help: 'redirector role: bound on asking a region whether it has a blob (HEAD)' }),
  option('downloadMemory', size, {
    default: '16MiB', env: 'FLOTILLA_DOWNLOAD_MEMORY', flag: '--download-memory <size>',
    help: 'bytes all running downloads together keep in memory for their readers; past it each keeps only what its disk has not taken (at most 256 KiB) and readers that fall behind read the file',
  }),
  option('store.maxBytes', size, {
    env: 'FLOTILLA_STORE_MAX_BYTES', flag: '--store-max-bytes <size>',
    help: 'most bytes the blob store holds, e.g. 20GiB or 150MB; past it the least recently served blobs are evicted',
  }),
  option('store.maxDiskPercent', percent, {
    default: 75, env: 'FLOTILLA_STORE_MAX_DISK_PERCENT', flag: '--store-max-disk-percent <n>',
    help: 'evict once the filesystem holding dataDir is this full (below kubelet\'s 85 % image-GC threshold, so the node\'s images are not collected for our cache)',
  }),
  option('store.lowWaterPercent', percent, {
    default: 90,
    help: 'an eviction pass frees blobs until the store is at this share of its budget, so that one commit does not evict again',
  }),
  option('upstream.connectTimeout', duration, { default: '5s', help: 'connecting to an upstream registry' }),
  option('upstream.headersTimeout', duration, { default: '15s', help: 'waiting for an upstream response\'s headers' }),
  option('upstream.bodyTimeout', duration, { default: '30s', help: 'between two chunks of an upstream body' }),
  option('upstream.retries', z.number().int().min(0).max(10), { default: 2, help: 'retries of an upstream request that found the registry unavailable (5xx, 429, a reset, a timeout; not a refused connection), after a backoff or its Retry-After' }),
  option('registries', registriesSchema, {
    env: 'FLOTILLA_REGISTRIES', flag: '-r, --registry <name=url>', key: 'registries', isList: true, merge: mergeRegistryPairs,
    help: 'upstream registries: NAME=URL adds one or replaces its endpoint (http:// for plain HTTP), e.g. docker.io=https://registry-1.docker.io; ' +
      'in the file, NAME: { endpoint, tagTTL } replaces the five defaults',
  }),
  option('containerd.socket', nonEmpty, {
    env: 'FLOTILLA_CONTAINERD_SOCKET', flag: '--containerd-socket <path>',
    help: 'serve what the node\'s containerd holds (read-only)',
  }),
  option('containerd.namespace', nonEmpty, {
    default: 'k8s.io', env: 'FLOTILLA_CONTAINERD_NAMESPACE', flag: '--containerd-namespace <ns>',
    help: 'containerd namespace',
  }),
  option('containerd.contentDir', nonEmpty, {
    env: 'FLOTILLA_CONTAINERD_CONTENT_DIR', flag: '--containerd-content-dir <dir>',
    help: 'containerd\'s content directory, read directly when readable',
  }),
  option('precache.file', nonEmpty, {
    env: 'FLOTILLA_PRECACHE', flag: '--precache <file>',
    help: 'image sets to keep on this node (YAML, watched; in Kubernetes a mounted ConfigMap): pulled, pinned, refreshed',
  }),
  option('precache.concurrency', z.coerce.number().int().min(1).max(16), {
    default: 2, help: 'pre-cache images pulled at once',
  }),
  option('precache.pullTimeout', duration, {
    default: '30m', help: 'bound on pre-caching one image (resolving, pulling, pinning); a failed one is retried with backoff',
  }),
  option('nodeLabels', labelList, {
    env: 'FLOTILLA_NODE_LABELS', flag: '--node-labels <k=v,...>',
    help: 'this node\'s labels for pre-cache nodeSelectors; unset, on Kubernetes they are read from the node (NODE_NAME, RBAC get on nodes)',
  }),
  option('p2p.listen', nonEmpty, {
    env: 'FLOTILLA_P2P_LISTEN', flag: '--p2p-listen <multiaddr>',
    help: 'join the peer-to-peer network on this address, e.g. /ip4/0.0.0.0/tcp/5001',
  }),
  option('p2p.bootstrap', z.array(nonEmpty), {
    default: [], env: 'FLOTILLA_BOOTSTRAP', flag: '--bootstrap <multiaddr|dns:name>', isList: true,
    help: 'peers to join through',
  }),
  option('p2p.clusterKeyFile', nonEmpty, {
    env: 'FLOTILLA_CLUSTER_KEY_FILE', flag: '--cluster-key-file <file>',
    help: 'pre-shared cluster key (see flotilla cluster-key)',
  }),
  option('p2p.zone', nonEmpty, {
    env: 'FLOTILLA_ZONE', flag: '--zone <name>',
    help: 'this node\'s zone; peers in the same zone are preferred (on Kubernetes, read from the node when unset)',
  }),
  option('p2p.peerAddress', hostPort, {
    env: 'FLOTILLA_PEER_ADDRESS', flag: '--peer-address <host:port>',
    help: 'how peers reach this agent\'s registry API',
  }),
  option('p2p.sendToHolders', z.enum(['auto', 'on', 'off']), {
    default: 'auto', env: 'FLOTILLA_SEND_TO_HOLDERS', flag: '--send-to-holders <auto|on|off>',
    help: 'a client\'s blob GET that nothing here has: on answers a 307 to a peer that holds it, or while none does to the digest\'s owner within its fan-out (the bytes go to the client once, not through this agent); off relays and keeps it here; auto is on when containerd.socket is set (containerd keeps the node\'s copy, which this agent serves from)',
  }),
  option('p2p.ownerFanout', z.coerce.number().int().min(1).max(1000), {
    default: 4, env: 'FLOTILLA_OWNER_FANOUT', flag: '--owner-fanout <n>',
    help: 'peers this agent streams a blob it owns to at once; more are sent on to them (a tree)',
  }),
] as const

export type Option = (typeof OPTIONS)[number]
