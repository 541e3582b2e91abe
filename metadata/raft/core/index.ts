/** Public API of the Raft core: the RaftNode state machine, its types and the conf-change codec. */
export * from './types.js';
export { RaftNode, transferContext } from './raft.js';
export { encodeConfChange, decodeConfChange, applyChange } from './confchange.js';
export { maxSafeIndex } from './log.js';
