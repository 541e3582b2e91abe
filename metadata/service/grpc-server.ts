/**
 * The metadata API on gRPC: decodes a CallRequest, runs it through MetadataService, and answers
 * with a JSON result or a serialized GalleonError. Unary `Call` and multiplexed `CallStream`
 * share this path.
 */
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { ErrorCode, GalleonError, type SerializedError } from '../../proto/errors.js';
import { serviceConstructor } from '../../proto/grpc-loader.js';
import type { MetadataService } from './api-handler.js';

export interface CallRequestWire { id: number; method: string; args: string; client_id: string; seq: number; stale: boolean }
export interface CallReplyWire { id: number; result: string; error: string }

export function serializeError(err: unknown): SerializedError {
  if (err instanceof GalleonError) return err.toJSON();
  return new GalleonError(ErrorCode.INTERNAL, `internal error: ${err instanceof Error ? err.message : String(err)}`, {
    hint: 'this is a bug in the metadata service; the member log has details',
  }).toJSON();
}

export function registerMetadataService(server: grpc.Server, service: () => MetadataService | null, logger: Logger): void {
  const ctor = serviceConstructor('metadata.proto', 'metadata', 'Metadata');

  const run = async (req: CallRequestWire): Promise<CallReplyWire> => {
    const id = req.id;
    try {
      const svc = service();
      if (svc === null) throw new GalleonError(ErrorCode.UNAVAILABLE, 'metadata member is starting or stopping', { hint: 'retry shortly or ask another member' });
      let args: unknown;
      try {
        args = req.args === '' ? [] : JSON.parse(req.args);
      } catch {
        throw new GalleonError(ErrorCode.INVALID_ARGUMENT, 'call arguments are not JSON', { hint: 'send the arguments as a JSON array' });
      }
      const value = await svc.call({ method: req.method, args: args as unknown[], clientId: req.client_id, seq: req.seq, stale: req.stale });
      return { id, result: JSON.stringify(value ?? null), error: '' };
    } catch (err) {
      if (!(err instanceof GalleonError)) logger.error({ err, method: req.method }, 'metadata call failed unexpectedly');
      return { id, result: '', error: JSON.stringify(serializeError(err)) };
    }
  };

  server.addService(ctor.service, {
    Call: (call: grpc.ServerUnaryCall<CallRequestWire, CallReplyWire>, callback: grpc.sendUnaryData<CallReplyWire>) => {
      run(call.request).then((reply) => callback(null, reply), (err: unknown) => callback({ code: grpc.status.INTERNAL, details: String(err) }));
    },
    CallStream: (call: grpc.ServerDuplexStream<CallRequestWire, CallReplyWire>) => {
      let open = true;
      call.on('data', (req: CallRequestWire) => {
        void run(req).then((reply) => { if (open) call.write(reply); });
      });
      call.on('end', () => { open = false; call.end(); });
      call.on('error', () => { open = false; });
      call.on('cancelled', () => { open = false; });
    },
  });
}
