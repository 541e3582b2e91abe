/** The public API of the replication core (see README.md). */
export { PgCore } from './pg.js';
export type { PgRecord } from './record.js';
export * from './types.js';
export { everyReplicaAnswered, handBackConcern, takeHandedBack } from './rules.js';
export { admitClientWrite, admitRead, replicaServesAnyRead, staleEpoch, type AdmissionView, type Refusal } from './admission.js';
export { admitPeering, admitReplicaOp, gapCheck, replicaTrimTo, type GapCheck } from './replica-rules.js';
export {
  behindAfterPeering, catchUpAfterFetch, catchUpTrimmed, groupHighestSeq, isStaleCopy, nextHole, peeringMustFail, pullOrder,
  type CatchUpStep, type HoleStep, type PeerState,
} from './peering-rules.js';
export { nextPeeringMove, peeringProbed, startPeering, type PeeringAnswer, type PeeringMove, type PeeringPlan, type PeeringStart } from './peering-plan.js';
export { afterHandBack, rejoinSteps, type HandBackStep } from './handback-rules.js';
export { placementStep, type PlacementStep, type PlacementView } from './placement-rules.js';
