/**
 * Prometheus metrics of one metadata member, registered in the Registry the embedder passes
 * (the daemon serves it on /metrics). Without a registry the metrics live in a private one.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

export class MemberMetrics {
  readonly registry: Registry;
  readonly term: Gauge;
  readonly commitIndex: Gauge;
  readonly appliedIndex: Gauge;
  readonly isLeader: Gauge;
  readonly leaderChanges: Counter;
  readonly proposals: Counter<'outcome'>;
  readonly proposalLatency: Histogram;
  readonly readyBatches: Counter;
  readonly persistLatency: Histogram;
  readonly applyLatency: Histogram;
  readonly snapshotsTaken: Counter;
  readonly snapshotsRestored: Counter;
  readonly snapshotBytesSent: Counter;
  readonly snapshotBytesReceived: Counter;
  readonly rpcs: Counter<'method' | 'code'>;
  private transportStats: () => { framesSent: number; messagesSent: number; framesReceived: number; messagesReceived: number } = () => ({ framesSent: 0, messagesSent: 0, framesReceived: 0, messagesReceived: 0 });

  /** One member per registry: metric names are not labelled by member. */
  constructor(registry?: Registry) {
    this.registry = registry ?? new Registry();
    const registers = [this.registry];
    const labelNames: string[] = [];
    this.term = new Gauge({ name: 'galleon_raft_term', help: 'Current Raft term', labelNames, registers });
    this.commitIndex = new Gauge({ name: 'galleon_raft_commit_index', help: 'Highest log index known committed', labelNames, registers });
    this.appliedIndex = new Gauge({ name: 'galleon_raft_applied_index', help: 'Highest log index applied to the state machine', labelNames, registers });
    this.isLeader = new Gauge({ name: 'galleon_raft_is_leader', help: '1 while this member leads', labelNames, registers });
    this.leaderChanges = new Counter({ name: 'galleon_raft_leader_changes_total', help: 'Leader changes seen by this member', labelNames, registers });
    this.proposals = new Counter({ name: 'galleon_raft_proposals_total', help: 'Proposals by outcome', labelNames: [...labelNames, 'outcome'], registers });
    this.proposalLatency = new Histogram({
      name: 'galleon_raft_proposal_latency_seconds', help: 'Time from proposal to applied result', labelNames, registers,
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    });
    this.readyBatches = new Counter({ name: 'galleon_raft_ready_total', help: 'Ready batches handled (one fsync each at most)', labelNames, registers });
    this.persistLatency = new Histogram({
      name: 'galleon_raft_persist_latency_seconds', help: 'Time to persist one Ready', labelNames, registers,
      buckets: [0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5],
    });
    this.applyLatency = new Histogram({
      name: 'galleon_raft_apply_latency_seconds', help: 'Time for the state machine to apply one batch of committed entries', labelNames, registers,
      buckets: [0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5],
    });
    this.snapshotsTaken = new Counter({ name: 'galleon_raft_snapshots_taken_total', help: 'Local snapshots taken (log compactions)', labelNames, registers });
    this.snapshotsRestored = new Counter({ name: 'galleon_raft_snapshots_restored_total', help: 'Snapshots received and restored', labelNames, registers });
    this.snapshotBytesSent = new Counter({ name: 'galleon_raft_snapshot_bytes_sent_total', help: 'Bytes of streamed snapshots sent to followers (completed transfers)', labelNames, registers });
    this.snapshotBytesReceived = new Counter({ name: 'galleon_raft_snapshot_bytes_received_total', help: 'Bytes of streamed snapshot chunks received and staged', labelNames, registers });
    const stats = (): ReturnType<MemberMetrics['transportStats']> => this.transportStats();
    new Gauge({ name: 'galleon_raft_frames_sent', help: 'Transport frames sent to peers (each a batch of messages)', registers, collect() { this.set(stats().framesSent); } });
    new Gauge({ name: 'galleon_raft_messages_sent', help: 'Raft messages sent to peers', registers, collect() { this.set(stats().messagesSent); } });
    new Gauge({ name: 'galleon_raft_frames_received', help: 'Transport frames received from peers', registers, collect() { this.set(stats().framesReceived); } });
    new Gauge({ name: 'galleon_raft_messages_received', help: 'Raft messages received from peers', registers, collect() { this.set(stats().messagesReceived); } });
    this.rpcs = new Counter({ name: 'galleon_metadata_rpcs_total', help: 'Metadata API calls served, by method and result code', labelNames: [...labelNames, 'method', 'code'], registers });
  }

  /** Lets the transport's counters show up in this registry. */
  bindTransport(stats: () => { framesSent: number; messagesSent: number; framesReceived: number; messagesReceived: number }): void {
    this.transportStats = stats;
  }
}
