/** Child process for the crash test: restores a snapshot file into a state directory, to be killed midway. */
import { readFile } from 'node:fs/promises';
import { openStateMachine } from '../../../metadata/state/index.js';

const [dir, snapshotFile, indexText] = process.argv.slice(2);
if (dir === undefined || snapshotFile === undefined || indexText === undefined) throw new Error('usage: restore-child <dir> <snapshot> <index>');
const data = await readFile(snapshotFile);
const sm = await openStateMachine(dir);
process.stdout.write('restoring\n');
await sm.restore(Number(indexText), data);
process.stdout.write('restored\n');
await sm.close();
