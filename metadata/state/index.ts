/** The replicated metadata state machine: see README.md for its job, key layout and invariants. */
export { openStateMachine, type StateMachineOptions } from './machine.js';
export { parseStorageClassDocument } from './logic/storage-class-document.js';
export { parseSize, formatSize } from './logic/size.js';
export { builtInStorageClasses, defaultStorageClass } from './logic/storage-classes.js';
export { pgsPerVolume, chooseReplicas, placeVolume, planNodeDown, staleDataNodes } from './logic/placement.js';
export { blockSizeBytes, defaultVolumeSizeBytes } from './logic/commands.js';
export * from './contract.js';
export { resyncVerdict } from './logic/pg-safety.js';
