import type { Upstream } from '../../src/upstream/upstream.js'

/** An in-memory Upstream for tests about blobs: every registry is configured, everything but `getBlob` throws. */
export function blobOnlyUpstream (getBlob: Upstream['getBlob']): Upstream {
  const unused = async (): Promise<never> => { throw new Error('not used in this test') }
  return { has: () => true, headManifest: unused, getManifest: unused, headBlob: unused, passThrough: unused, getBlob, close: async () => {} }
}
