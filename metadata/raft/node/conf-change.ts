/**
 * Membership-change helpers the driver needs: decoding a ConfChange entry and tracking the
 * configuration as of the applied index (recorded in snapshot metadata). The wire format is the
 * core's (JSON of ConfChange); the driver only mirrors it to know the conf at any applied index.
 */
import type { ConfChange, ConfState } from '../core/types.js';
import { ErrorCode, GalleonError } from '../../../proto/errors.js';

const decoder = new TextDecoder();
const changeTypes = new Set(['add-voter', 'add-learner', 'promote-learner', 'remove-node']);

export function decodeConfChangeData(data: Uint8Array): ConfChange {
  let raw: unknown;
  try {
    raw = JSON.parse(decoder.decode(data));
  } catch (cause) {
    throw new GalleonError(ErrorCode.INVARIANT_VIOLATION, 'committed conf change entry is not JSON', { cause });
  }
  const r = raw as Record<string, unknown> | null;
  if (r === null || typeof r !== 'object' || typeof r.type !== 'string' || !changeTypes.has(r.type) || typeof r.node !== 'string') {
    throw new GalleonError(ErrorCode.INVARIANT_VIOLATION, 'committed conf change entry lacks a known type or node');
  }
  const change: ConfChange = { type: r.type as ConfChange['type'], node: r.node };
  if (typeof r.context === 'string') change.context = r.context;
  return change;
}

export function applyConfChange(conf: ConfState, change: ConfChange): ConfState {
  const voters = conf.voters.filter((v) => v !== change.node);
  const learners = conf.learners.filter((l) => l !== change.node);
  const wasVoter = conf.voters.includes(change.node);
  switch (change.type) {
    case 'add-voter':
    case 'promote-learner':
      voters.push(change.node);
      break;
    case 'add-learner':
      if (wasVoter) return conf;
      learners.push(change.node);
      break;
    case 'remove-node':
      if (wasVoter && conf.voters.length === 1) return conf;
      break;
  }
  if (change.type === 'promote-learner' && !conf.learners.includes(change.node)) return conf;
  return { voters: voters.sort(), learners: learners.sort() };
}
