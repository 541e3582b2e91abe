/**
 * Snapshots under kill -9 (issue #11, "Crash safety"): a volume of its own (`chaos-snap`), one
 * sequential actor — so the model is exact — that writes blocks, takes snapshots, deletes them
 * (the oldest, a middle one, the newest: any) and restores the volume in place. Each delete and
 * each restore is ARMED first: it starts at the nemesis's next strike, which then kills the kind
 * of process the actor asked for — a data node or the metadata leader, in turn — so the fault
 * lands while the command, its fence round or the prune that follows are under way. Every step
 * is retried until it is done (idempotent: a retried delete finds the snapshot gone, a retried
 * restore restores to the same snapshot again). At the end, after healing: every block read at
 * every surviving snapshot, and live, must equal the model; nothing a snapshot or the live volume
 * references may be lost.
 */
import { isGalleonError } from '../../proto/errors.js';
import type { Snapshot, Volume } from '../../proto/metadata-types.js';
import type { BlockClient } from '../../dataplane/client/block-client.js';
import { fenceVolume, pruneRound, readBlockAt, viewOf, type NodePost } from '../../dataplane/client/snapshot-reads.js';
import type { ChaosClient } from '../cluster/client.js';
import { retryCall } from '../lib/harness.js';
import type { Random } from '../lib/random.js';
import { delay } from '../lib/wait.js';
import { decodeBlock, encodeBlock } from './content.js';

export type StrikeKind = 'data-node' | 'metadata-leader';
export type ArmedWhat = 'snapshot delete' | 'restore';

/** An operation waiting for the nemesis's next strike; `begin` starts it (the kill follows at once). */
export interface ArmedOp { what: ArmedWhat; want: StrikeKind; begin: () => void }

export interface SnapshotChaosOptions {
  volumeName: string;
  storageClass: string;
  blockSizeBytes: number;
  /** Blocks of the volume the actor writes (inode `inode`, numbers 0..blocks-1). */
  blocks: number;
  inode: number;
  /** Most snapshots alive at once (another is taken only after a delete). */
  maxSnapshots: number;
  /** One attempt of a step; a step is retried until `stepTimeoutMs`. */
  attemptTimeoutMs: number;
  stepTimeoutMs: number;
  /** An armed operation starts on its own when no strike came within this. */
  armedWaitMs: number;
  /** Pause between steps (the actor is not a load generator). */
  stepPauseMs: number;
}

type Model = Map<number, string | null>;

/** Blocks one write step writes (in parallel). */
const writesPerStep = 4;

/** Strike kinds × operations, in this order: each combination comes up in turn. */
const plan: readonly [ArmedWhat, StrikeKind][] = [['snapshot delete', 'data-node'], ['restore', 'metadata-leader'], ['snapshot delete', 'metadata-leader'], ['restore', 'data-node']];

export class SnapshotChaos {
  private armed: ArmedOp | null = null;
  private stopping = false;
  private live: Model = new Map();
  private readonly snaps = new Map<string, Model>();
  private seq = 0;
  private planAt = 0;
  volume: Volume | null = null;
  /** What the actor did, and the strikes that landed during its armed operations. */
  readonly counts = { writes: 0, snapshots: 0, deletes: 0, restores: 0, prunesFailed: 0 };
  readonly struck: string[] = [];

  constructor(private readonly api: ChaosClient, private readonly client: BlockClient, private readonly post: NodePost, private readonly rnd: Random,
    private readonly o: SnapshotChaosOptions, private readonly log: (line: string) => void) {}

  /** The nemesis, at a strike: the armed operation (started now), or null. */
  takeArmed(): ArmedOp | null {
    const a = this.armed;
    this.armed = null;
    return a;
  }

  stop(): void {
    this.stopping = true;
    // An operation waiting for a strike is let go (and skipped: see armedStep).
    this.takeArmed()?.begin();
  }

  /** Self-test: the model claims a value no one wrote, at the newest surviving snapshot (else live); the check must name it. */
  injectLoss(): string {
    const name = [...this.snaps.keys()].at(-1);
    (name === undefined ? this.live : this.snaps.get(name)!).set(0, 'injected-never-written');
    return `${name === undefined ? 'live (no snapshot taken yet)' : `snapshot ${name}`}, block ${this.o.inode}/0`;
  }

  async setup(): Promise<void> {
    this.volume = await this.retry('creating the snapshot volume', async () => {
      try {
        return await this.api.createVolume({ name: this.o.volumeName, size: '64M', storageClass: this.o.storageClass, replicas: 3 });
      } catch (err) {
        if (!isGalleonError(err, 'VOLUME_EXISTS')) throw err;
        return this.api.getVolume(this.o.volumeName);
      }
    });
    for (let b = 0; b < this.o.blocks; b++) this.live.set(b, null);
  }

  /** The actor: until stopped, one step at a time. A step that cannot finish within its bound fails the run. */
  async run(): Promise<void> {
    while (!this.stopping) {
      const r = this.rnd.next();
      // An armed step waits for a strike (seconds): most steps write and snapshot in between.
      if (r < 0.4) await this.write();
      else if (r < 0.65 || this.snaps.size === 0) await (this.snaps.size < this.o.maxSnapshots ? this.snapshot() : this.write());
      else await this.armedStep();
      await delay(this.o.stepPauseMs);
    }
  }

  private retry<T>(what: string, fn: () => Promise<T>): Promise<T> {
    return retryCall(what, this.o.stepTimeoutMs, this.o.attemptTimeoutMs, fn);
  }

  /** `writesPerStep` blocks at once (distinct), each retried with the same value until acknowledged. */
  private async write(): Promise<void> {
    const vol = this.requireVolume();
    const picked = new Map<number, string>();
    while (picked.size < Math.min(writesPerStep, this.o.blocks)) picked.set(this.rnd.int(this.o.blocks), `s-${++this.seq}`);
    // The same value again on a retry: whichever attempt lands, the block holds it.
    await Promise.all([...picked].map(([b, value]) => this.retry(`snapshot volume: write ${value}`,
      () => this.client.writeBlock(vol.id, this.o.inode, b, encodeBlock(value, this.o.blockSizeBytes), 'replicated'))));
    for (const [b, value] of picked) this.live.set(b, value);
    this.counts.writes += picked.size;
  }

  private async snapshot(): Promise<void> {
    const vol = this.requireVolume();
    const name = `cs-${++this.seq}`;
    await this.retry(`snapshot ${name}`, async () => {
      try {
        return await this.api.createSnapshot(vol.id, name);
      } catch (err) {
        if (isGalleonError(err, 'SNAPSHOT_EXISTS')) return this.api.getSnapshot(name);
        throw err;
      }
    });
    // The fence round: no write of ours carrying an older epoch may land below the cut afterwards.
    await this.retry(`fence after ${name}`, () => fenceVolume(this.api, vol.id, this.post));
    this.snaps.set(name, new Map(this.live));
    this.counts.snapshots++;
  }

  /** A delete or a restore, started at the nemesis's next strike of the kind the plan names. */
  private async armedStep(): Promise<void> {
    // A delete keeps one snapshot at least: the final check has one to read at.
    let [what, want] = plan[this.planAt++ % plan.length]!;
    if (what === 'snapshot delete' && this.snaps.size < 2) [what, want] = plan[this.planAt++ % plan.length]!;
    const name = this.rnd.pick([...this.snaps.keys()]);
    let begin!: () => void;
    let struck = false;
    const begun = new Promise<void>((resolve) => { begin = resolve; });
    this.armed = {
      what, want,
      begin: () => {
        if (!this.stopping) { struck = true; this.struck.push(`${what} of ${name} during kill -9 of a ${want}`); }
        begin();
      },
    };
    await Promise.race([begun, delay(this.o.armedWaitMs)]);
    this.armed = null;
    // Stopped before any strike: the step would only be an unstruck delete or restore the run no
    // longer needs (and under load its prune round outlasted the self-test's budget in CI).
    if (this.stopping && !struck) return;
    if (what === 'snapshot delete') await this.deleteSnapshot(name);
    else await this.restore(name);
  }

  private async deleteSnapshot(name: string): Promise<void> {
    const vol = this.requireVolume();
    await this.retry(`delete snapshot ${name}`, async () => {
      try {
        return await this.api.deleteSnapshot(name);
      } catch (err) {
        if (isGalleonError(err, 'SNAPSHOT_NOT_FOUND')) return null; // an earlier attempt did it
        throw err;
      }
    });
    this.snaps.delete(name);
    this.counts.deletes++;
    // The versions only it kept are freed, and the volume's prune request (set by the delete command)
    // marked done, as the daemon's prune runner does. This cluster runs no daemons, so nothing
    // resumes a prune that cannot finish now: its request stays pending (volume get shows it) and the
    // next delete's round, which reads a newer request count, covers it.
    try {
      await this.retry(`prune after deleting ${name}`, async () => {
        const round = await pruneRound(this.api, vol.id, { dryRun: false, timeoutMs: this.o.attemptTimeoutMs, post: this.post, withDeparted: true });
        if (round.gen > 0) await this.api.finishVolumePrune(round.volumeId, round.gen);
      });
    } catch (err) {
      this.counts.prunesFailed++;
      this.log(`snapshots: prune after deleting ${name} did not finish: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  private async restore(name: string): Promise<void> {
    const vol = this.requireVolume();
    await this.retry(`restore to ${name}`, () => this.api.restoreVolume(vol.id, name));
    await this.retry(`fence after restoring ${name}`, () => fenceVolume(this.api, vol.id, this.post));
    const at = this.snaps.get(name);
    if (at === undefined) throw new Error(`restored to ${name}, which the model does not hold`);
    this.live = new Map(at);
    this.counts.restores++;
  }

  private requireVolume(): Volume {
    if (this.volume === null) throw new Error('snapshot chaos: setup() first');
    return this.volume;
  }

  /**
   * After healing: the surviving snapshots are the model's, and every block at each of them and
   * live reads as the model says. Returns one line per difference (empty: nothing lost).
   */
  async check(reader: BlockClient): Promise<{ reads: number; problems: string[] }> {
    const vol = await this.retry('snapshot volume', () => this.api.getVolume(this.requireVolume().id));
    const listed = await this.retry('snapshot list', () => this.api.listSnapshots(vol.id));
    const problems: string[] = [];
    const names = listed.map((s) => s.name).sort();
    const want = [...this.snaps.keys()].sort();
    if (names.join(',') !== want.join(',')) problems.push(`snapshots listed ${names.join(',') || 'none'}, the model holds ${want.join(',') || 'none'}`);
    let reads = 0;
    const views: [string, Snapshot | undefined, Model][] = [['live', undefined, this.live], ...listed.filter((s) => this.snaps.has(s.name)).map((s): [string, Snapshot, Model] => [s.name, s, this.snaps.get(s.name)!])];
    for (const [label, snap, model] of views) {
      const view = await viewOf(vol, snap, (id) => this.api.getVolume(id));
      for (const [b, expected] of model) {
        const got = await this.retry(`read ${b} at ${label}`, async () => {
          const r = await readBlockAt(reader, view, this.o.inode, b);
          return r === null ? null : decodeBlock(r.data);
        });
        reads++;
        if (got !== expected) problems.push(`block ${this.o.inode}/${b} at ${label}: reads ${JSON.stringify(got)}, the model says ${JSON.stringify(expected)}`);
      }
    }
    return { reads, problems };
  }
}
