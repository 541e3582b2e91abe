/**
 * The seam to metadata/service/member.ts, loaded on demand so the CLI's other commands never pay
 * for gRPC and LevelDB at startup.
 */
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { MetadataApi } from '../../proto/metadata-types.js';
import { ErrorCode, GalleonError } from '../../proto/errors.js';

export interface MemberOptions {
  id: string;
  dataDir: string;
  bindAddress: string;
  adminAddress: string;
  peers: string[];
  join: string[];
  targetVoters: number;
  logger: Logger;
  registry: Registry;
}

export interface MemberHandle {
  api: MetadataApi;
  stop(): Promise<void>;
}

export interface MemberModule {
  startMetadataMember(options: MemberOptions): Promise<MemberHandle>;
}

const memberModulePath = '../../metadata/service/member.js';

export async function loadMemberModule(): Promise<MemberModule> {
  try {
    return (await import(memberModulePath)) as MemberModule;
  } catch (err) {
    throw new GalleonError(ErrorCode.UNAVAILABLE, 'the metadata service is not part of this build', { hint: 'run with --roles data, or update GalleonFS', cause: err });
  }
}
