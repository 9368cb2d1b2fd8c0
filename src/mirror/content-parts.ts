import type { Metrics } from '../metrics/metrics.js'
import type { BlobStore } from '../store/blob-store.js'
import type { Upstream } from '../upstream/upstream.js'
import type { ContentScope } from './content-scope.js'
import type { ContentSource } from './content-source.js'
import type { RemoteContent } from './mirror-types.js'

/** What every part of the engine that looks for content is built from. */
export interface ContentParts {
  readonly store: BlobStore
  readonly localSources: readonly ContentSource[]
  readonly upstream: Upstream
  readonly remote: RemoteContent | undefined
  readonly scope: ContentScope
  readonly metrics: Metrics
}
