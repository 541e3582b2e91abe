/**
 * The one place the chaos tools construct a metadata client, so a change in the client's
 * constructor touches one line.
 */
import type { MetadataApi } from '../../proto/metadata-types.js';

export interface ChaosClient extends MetadataApi {
  close(): void | Promise<void>;
}

interface ClientModule {
  MetadataClient: new (addresses: string[]) => ChaosClient;
}

// Imported by a computed path while metadata/service is still being written on its branch.
const clientPath = '../../metadata/service/client.js';

export async function connectClient(addresses: string[]): Promise<ChaosClient> {
  const mod = (await import(clientPath)) as ClientModule;
  return new mod.MetadataClient(addresses);
}
