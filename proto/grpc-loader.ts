/**
 * Loads the project's .proto files for @grpc/grpc-js. Kept in one place so the Raft transport,
 * the metadata service and its client all agree on loader options.
 */
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { fileURLToPath } from 'node:url';

const loaderOptions: protoLoader.Options = { keepCase: true, longs: Number, enums: String, defaults: true, oneofs: false };

const cache = new Map<string, grpc.GrpcObject>();

export function loadProto(fileName: 'raft.proto' | 'metadata.proto'): grpc.GrpcObject {
  let pkg = cache.get(fileName);
  if (pkg === undefined) {
    const path = fileURLToPath(new URL(`./${fileName}`, import.meta.url));
    pkg = grpc.loadPackageDefinition(protoLoader.loadSync(path, loaderOptions));
    cache.set(fileName, pkg);
  }
  return pkg;
}

/** The service constructor at `galleon.<pkg>.<service>` in a loaded proto. */
export function serviceConstructor(fileName: 'raft.proto' | 'metadata.proto', pkg: string, service: string): grpc.ServiceClientConstructor {
  const galleon = loadProto(fileName).galleon as grpc.GrpcObject;
  const ns = galleon[pkg] as grpc.GrpcObject;
  return ns[service] as grpc.ServiceClientConstructor;
}

/** Channel limits shared by servers and clients: frames are cut well below this. */
export const maxGrpcMessageBytes = 16 * 1024 * 1024;

export const grpcChannelOptions: grpc.ChannelOptions = {
  'grpc.max_receive_message_length': maxGrpcMessageBytes,
  'grpc.max_send_message_length': maxGrpcMessageBytes,
  'grpc.keepalive_time_ms': 5000,
  'grpc.keepalive_timeout_ms': 3000,
  'grpc.keepalive_permit_without_calls': 1,
  'grpc.initial_reconnect_backoff_ms': 100,
  'grpc.max_reconnect_backoff_ms': 1000,
};
