/**
 * Every command and query of the state machine, fed arguments of any shape (issue #10: no
 * request may crash a node). The gRPC edge checks the shapes of the older methods
 * (metadata/service/call-args.ts); every method, the namespace's included, must still turn a
 * wrong argument into a GalleonError with a client code. A handler that throws anything else
 * makes `apply()` throw, which stops the metadata member: exactly the crash this suite looks for.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { isGalleonError } from '../../proto/errors.js';
import { commandMethods, queryMethods } from '../../metadata/state/contract.js';
import type { StateMachine } from '../../metadata/state/contract.js';
import { addNodes, useStateMachine, type Feeder } from '../metadata/state/helpers.js';

/** Runs per method: enough to hit every argument position with every JSON type. */
const runsPerMethod = 60;
const bugCodes = new Set(['INTERNAL', 'INVARIANT_VIOLATION']);

/** Arguments that look almost right: the real volume, small inode numbers, junk around them. */
function argsArbitrary(volume: string): fc.Arbitrary<unknown[]> {
  const near = fc.oneof(
    fc.constant(volume), fc.constantFrom(0, 1, 2, -1, 2 ** 53, 1.5), fc.constant({ uid: 0, gid: 0 }),
    fc.constant(null), fc.constant(''), fc.string({ maxLength: 300 }), fc.jsonValue({ maxDepth: 2 }),
  );
  return fc.array(near, { maxLength: 9 });
}

describe('hardening: every state-machine method with arguments of any shape', function () {
  this.timeout(120_000);
  let sm: StateMachine;
  let f: Feeder;
  useStateMachine((opened, feeder) => { sm = opened; f = feeder; });

  it('answers each command with a result (a client error at worst), never a thrown bug', async () => {
    await addNodes(f, 3);
    await f.ok('createVolume', { name: 'fuzz', size: '1G', blockSize: '4K' });
    await f.ok('fsAllocateInodes', 'fuzz', 100);
    let failed = 0;
    let total = 0;
    for (const method of commandMethods) {
      const samples = fc.sample(argsArbitrary('fuzz'), { numRuns: runsPerMethod, seed: method.length * 7919 });
      for (const args of samples) {
        total += 1;
        const result = await f.run(method, ...args).catch((err: unknown) => assert.fail(`${method}(${JSON.stringify(args)}) threw: ${String(err)}`));
        if (result.ok) continue;
        failed += 1;
        assert.ok(!bugCodes.has(result.error.code), `${method}(${JSON.stringify(args)}) answered ${result.error.code}: ${result.error.message}`);
      }
    }
    console.log(`      ${total} commands with random arguments: ${failed} refused, ${total - failed} applied, none threw`);
    assert.ok(failed > total / 2, 'most random arguments are refused');
  });

  it('answers each query with a value or a GalleonError with a client code', async () => {
    await addNodes(f, 1);
    await f.ok('createVolume', { name: 'fuzz', size: '1G', replicas: 1, storageClass: 'fast-local-ssd' });
    for (const method of queryMethods) {
      for (const args of fc.sample(argsArbitrary('fuzz'), { numRuns: runsPerMethod, seed: method.length * 104729 })) {
        await sm.query(method, args).catch((err: unknown) => {
          assert.ok(isGalleonError(err), `${method}(${JSON.stringify(args)}) threw a non-GalleonError: ${String(err)}`);
          assert.ok(!bugCodes.has(err.code), `${method}(${JSON.stringify(args)}) answered ${err.code}: ${err.message}`);
        });
      }
    }
  });
});
