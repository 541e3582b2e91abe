/**
 * The chaos load: concurrent clients issuing register writes (a unique label value), linearizable
 * reads, and creates/deletes of a few extra volumes, each recorded as a history operation.
 *
 * Keys of the register model:
 *   `label:<volume>` — label `v` of one of the long-lived volumes (write / read);
 *   `volume:<name>`  — whether an extra volume exists (create / delete / read), value `exists`.
 */
import { isGalleonError } from '../../proto/errors.js';
import type { ChaosClient } from '../cluster/client.js';
import { Random } from '../lib/random.js';
import { delay, withTimeout } from '../lib/wait.js';
import { type HistoryRecorder, isDefiniteFailure } from './history-recorder.js';

export const labelName = 'v';
export const existsValue = 'exists';

export interface WorkloadOptions {
  registerVolumes: string[];
  extraVolumes: string[];
  /** A call with no answer after this long is recorded as unknown and abandoned. */
  opTimeoutMs: number;
  /** Pause after an error so a leaderless cluster is not hammered in a tight loop. */
  errorBackoffMs: number;
  /** Size of the extra volumes. */
  extraVolumeSize: string;
}

export const labelKey = (volume: string): string => `label:${volume}`;
export const volumeKey = (volume: string): string => `volume:${volume}`;

export class Workload {
  private stopping = false;

  constructor(private readonly recorder: HistoryRecorder, private readonly options: WorkloadOptions) {}

  stop(): void {
    this.stopping = true;
  }

  /** One client's loop; resolves once `stop()` was called and its last call finished. */
  async runClient(clientId: number, client: ChaosClient, seed: number): Promise<void> {
    const rnd = new Random(seed);
    let seq = 0;
    while (!this.stopping) {
      const roll = rnd.next();
      let ok: boolean;
      if (roll < 0.45) {
        ok = await this.writeLabel(clientId, client, rnd.pick(this.options.registerVolumes), `c${clientId}-${seq++}`);
      } else if (roll < 0.85) {
        ok = await this.readLabel(clientId, client, rnd.pick(this.options.registerVolumes));
      } else {
        const name = rnd.pick(this.options.extraVolumes);
        const r = rnd.next();
        ok = r < 0.4 ? await this.createExtra(clientId, client, name) : r < 0.7 ? await this.deleteExtra(clientId, client, name) : await this.readExtra(clientId, client, name);
      }
      if (!ok) await delay(this.options.errorBackoffMs);
    }
  }

  async writeLabel(clientId: number, client: ChaosClient, volume: string, value: string): Promise<boolean> {
    const pending = this.recorder.begin(clientId, labelKey(volume), { op: 'write', value });
    try {
      await this.call(client.updateVolumeLabels(volume, { [labelName]: value }));
      pending.ok({});
      return true;
    } catch (err) {
      if (isDefiniteFailure(err)) pending.failed(err);
      else pending.unknown(err);
      return false;
    }
  }

  async readLabel(clientId: number, client: ChaosClient, volume: string): Promise<boolean> {
    const pending = this.recorder.begin(clientId, labelKey(volume), { op: 'read' });
    try {
      const vol = await this.call(client.getVolume(volume));
      pending.ok({ value: vol.labels[labelName] ?? null });
      return true;
    } catch (err) {
      // A read that did not answer observed nothing; the checker drops it.
      pending.unknown(err);
      return false;
    }
  }

  async createExtra(clientId: number, client: ChaosClient, name: string): Promise<boolean> {
    const pending = this.recorder.begin(clientId, volumeKey(name), { op: 'create', value: existsValue });
    try {
      await this.call(client.createVolume({ name, size: this.options.extraVolumeSize }));
      pending.ok({ ok: true });
      return true;
    } catch (err) {
      if (isGalleonError(err, 'VOLUME_EXISTS')) {
        pending.ok({ ok: false });
        return true;
      }
      if (isDefiniteFailure(err)) pending.failed(err);
      else pending.unknown(err);
      return false;
    }
  }

  async deleteExtra(clientId: number, client: ChaosClient, name: string): Promise<boolean> {
    const pending = this.recorder.begin(clientId, volumeKey(name), { op: 'delete' });
    try {
      await this.call(client.deleteVolume(name));
      pending.ok({ ok: true });
      return true;
    } catch (err) {
      if (isGalleonError(err, 'VOLUME_NOT_FOUND')) {
        pending.ok({ ok: false });
        return true;
      }
      if (isDefiniteFailure(err)) pending.failed(err);
      else pending.unknown(err);
      return false;
    }
  }

  async readExtra(clientId: number, client: ChaosClient, name: string): Promise<boolean> {
    const pending = this.recorder.begin(clientId, volumeKey(name), { op: 'read' });
    try {
      await this.call(client.getVolume(name));
      pending.ok({ value: existsValue });
      return true;
    } catch (err) {
      if (isGalleonError(err, 'VOLUME_NOT_FOUND')) {
        pending.ok({ value: null });
        return true;
      }
      pending.unknown(err);
      return false;
    }
  }

  private call<T>(promise: Promise<T>): Promise<T> {
    // An abandoned call may still settle later; its result no longer matters.
    promise.catch(() => undefined);
    return withTimeout(promise, this.options.opTimeoutMs);
  }
}
