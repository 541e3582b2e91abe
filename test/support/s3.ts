/**
 * A real S3-compatible server for tests: s3rver (a devDependency; Node 20-compatible, speaks the
 * S3 REST API the AWS SDK uses — buckets, put/get/head/list-v2/delete — and keeps objects as
 * files in a folder we give it), on an ephemeral loopback port. `stop()` closes it; the caller
 * removes the folder.
 */
import S3rver from 's3rver';
import { mkdir } from 'node:fs/promises';

export interface LocalS3 {
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  directory: string;
  stop(): Promise<void>;
}

export async function startS3(directory: string, buckets: string[]): Promise<LocalS3> {
  await mkdir(directory, { recursive: true });
  const server = new S3rver({ port: 0, address: '127.0.0.1', directory, silent: true, configureBuckets: buckets.map((name) => ({ name, configs: [] })) });
  const { address, port } = await server.run();
  return {
    endpoint: `http://${address}:${port}`, accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER', directory,
    stop: () => server.close(),
  };
}
