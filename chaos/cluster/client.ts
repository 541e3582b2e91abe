/**
 * The one place the chaos tools and the metadata benchmark construct a metadata client, so a
 * change in the client's options touches one file.
 */
import { MetadataClient } from '../../metadata/service/client.js';
import type { MetadataApi } from '../../proto/metadata-types.js';

export interface ChaosClient extends MetadataApi {
  close(): void | Promise<void>;
}

export interface ConnectOptions {
  /** Total time one call may take, the client's own retries included. */
  callDeadlineMs?: number;
}

export function connectClient(addresses: string[], options: ConnectOptions = {}): Promise<ChaosClient> {
  return Promise.resolve(new MetadataClient({ addresses, ...(options.callDeadlineMs === undefined ? {} : { callDeadlineMs: options.callDeadlineMs }) }));
}
