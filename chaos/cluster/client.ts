/**
 * The one place the chaos tools and the metadata benchmark construct a metadata client, so a
 * change in the client's options touches one file.
 */
import { MetadataClient } from '../../metadata/service/client.js';
import type { MetadataApi } from '../../proto/metadata-types.js';
import type { TlsMaterial } from '../../proto/tls.js';

export interface ChaosClient extends MetadataApi {
  close(): void | Promise<void>;
}

export interface ConnectOptions {
  /** Total time one call may take, the client's own retries included. */
  callDeadlineMs?: number;
  /** The run's client certificate when its cluster runs mutual TLS (MetadataCluster.clientTls). */
  tls?: TlsMaterial | null;
}

export function connectClient(addresses: string[], options: ConnectOptions = {}): Promise<ChaosClient> {
  return Promise.resolve(new MetadataClient({ addresses, ...(options.callDeadlineMs === undefined ? {} : { callDeadlineMs: options.callDeadlineMs }), tls: options.tls ?? null }));
}
