/**
 * npm run bench:raft — committed proposals per second through a 3-node cluster of the Raft core
 * in one process: instant network, instant disk, many small proposals per Ready. Measures the
 * core alone (no I/O) against a target of 100,000 proposals/s on one core.
 */
import { RaftNode, Role, type Message, type NodeId, type RaftConfig, type Ready } from '../../metadata/raft/core/index.js';

const targetPerSec = 100_000;
const proposalBytes = 64;
const proposalsPerRound = 1024;
const durationMs = Number(process.env.BENCH_MS ?? 3000);
const compactEvery = 200_000;

let seed = 12345;
const random = { nextInt: (max: number): number => { seed = (seed * 1103515245 + 12345) >>> 0; return seed % max; } };

function config(id: NodeId): RaftConfig {
  return {
    id, electionTicks: 10, heartbeatTicks: 1, preVote: true, checkQuorum: true,
    maxInflightMessages: 256, maxInflightBytes: 0, maxMessageBytes: 1 << 20, maxUncommittedBytes: 0, random,
  };
}

const ids = ['a', 'b', 'c'];
const nodes = new Map<NodeId, RaftNode>();
for (const id of ids) {
  nodes.set(id, new RaftNode(config(id), {
    hardState: { term: 0, vote: null, commit: 0 },
    snapshotMeta: { index: 0, term: 0, conf: { voters: ids, learners: [] } },
    entries: [],
    applied: 0,
  }));
}
const applied = new Map<NodeId, number>(ids.map((id) => [id, 0]));
let inbox: Message[] = [];

function drain(): void {
  for (;;) {
    let moved = false;
    for (const [id, n] of nodes) {
      while (n.hasReady()) {
        const rd: Ready = n.ready();
        for (const m of rd.messagesBeforePersist) inbox.push(m);
        for (const m of rd.messages) inbox.push(m);
        const last = rd.committedEntries[rd.committedEntries.length - 1];
        if (last !== undefined) applied.set(id, last.index);
        n.advance(rd);
        moved = true;
      }
    }
    if (inbox.length === 0 && !moved) return;
    const batch = inbox;
    inbox = [];
    for (const m of batch) nodes.get(m.to)?.step(m);
  }
}

const leader = nodes.get('a') as RaftNode;
leader.campaign();
drain();
if (leader.status().role !== Role.Leader) throw new Error('bench: a did not become leader');

const payload = new Uint8Array(proposalBytes).fill(7);
const startApplied = applied.get('a') ?? 0;
let proposed = 0;
let lastCompact = startApplied;
const started = performance.now();
while (performance.now() - started < durationMs) {
  for (let i = 0; i < proposalsPerRound; i++) {
    if (!leader.propose(payload)) throw new Error('bench: proposal dropped');
  }
  proposed += proposalsPerRound;
  drain();
  const a = applied.get('a') ?? 0;
  if (a - lastCompact >= compactEvery) {
    for (const [id, n] of nodes) n.compact(applied.get(id) ?? 0, new Uint8Array(0));
    lastCompact = a;
  }
}
const secs = (performance.now() - started) / 1000;
const committed = (applied.get('a') ?? 0) - startApplied;
const perSec = committed / secs;
if (committed !== proposed) throw new Error(`bench: ${proposed} proposed but ${committed} committed`);
console.log(`raft core, 3 nodes in one process: ${committed} proposals of ${proposalBytes} B committed in ${secs.toFixed(2)} s`);
console.log(`${Math.round(perSec).toLocaleString('en-US')} committed proposals/s (${(perSec / targetPerSec).toFixed(2)}x the ${targetPerSec.toLocaleString('en-US')}/s target), ${proposalsPerRound} proposals per Ready`);
