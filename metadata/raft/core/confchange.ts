/**
 * Membership changes: their wire encoding inside a ConfChange entry, and how one change turns
 * a ConfState into the next. One change at a time (single-server changes, thesis §4.1): any two
 * consecutive configurations share a majority, so no joint consensus is needed.
 */
import { ErrorCode, GalleonError, invariant } from '../../../proto/errors.js';
import { ConfChangeType, type ConfChange, type ConfState } from './types.js';

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const changeTypes = new Set<string>(Object.values(ConfChangeType));

export function encodeConfChange(change: ConfChange): Uint8Array {
  const wire: { type: string; node: string; context?: string } = { type: change.type, node: change.node };
  if (change.context !== undefined) wire.context = change.context;
  return encoder.encode(JSON.stringify(wire));
}

export function decodeConfChange(data: Uint8Array): ConfChange {
  let raw: unknown;
  try {
    raw = JSON.parse(decoder.decode(data));
  } catch (cause) {
    throw new GalleonError(ErrorCode.INVALID_ARGUMENT, 'conf change entry is not valid JSON', { cause, hint: 'the log entry is corrupt or was written by another program' });
  }
  const r = raw as Record<string, unknown> | null;
  if (r === null || typeof r !== 'object' || typeof r.type !== 'string' || !changeTypes.has(r.type) || typeof r.node !== 'string' || r.node === '') {
    throw new GalleonError(ErrorCode.INVALID_ARGUMENT, 'conf change entry lacks a known type or a node id', { hint: 'the log entry is corrupt or was written by another program' });
  }
  const change: ConfChange = { type: r.type as ConfChangeType, node: r.node };
  if (typeof r.context === 'string') change.context = r.context;
  return change;
}

export function cloneConf(conf: ConfState): ConfState {
  return { voters: conf.voters.slice(), learners: conf.learners.slice() };
}

/** Whether `change` does anything to `conf` (a proposal that does nothing is refused). */
export function isEffective(conf: ConfState, change: ConfChange): boolean {
  const voter = conf.voters.includes(change.node);
  const learner = conf.learners.includes(change.node);
  switch (change.type) {
    case ConfChangeType.AddVoter: return !voter;
    case ConfChangeType.AddLearner: return !voter && !learner;
    case ConfChangeType.PromoteLearner: return learner;
    case ConfChangeType.RemoveNode: return (voter && conf.voters.length > 1) || learner;
  }
}

/** The configuration after `change`. Changes that do nothing leave it as it is. */
export function applyChange(conf: ConfState, change: ConfChange): ConfState {
  if (!isEffective(conf, change)) return conf;
  const voters = conf.voters.filter((v) => v !== change.node);
  const learners = conf.learners.filter((l) => l !== change.node);
  switch (change.type) {
    case ConfChangeType.AddVoter:
    case ConfChangeType.PromoteLearner:
      voters.push(change.node);
      break;
    case ConfChangeType.AddLearner:
      learners.push(change.node);
      break;
    case ConfChangeType.RemoveNode:
      break;
  }
  voters.sort();
  learners.sort();
  invariant(voters.length > 0, 'a configuration keeps at least one voter');
  return { voters, learners };
}
