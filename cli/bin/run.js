#!/usr/bin/env node
// The `galleon` binary. Commands are TypeScript run through tsx, which caches what it compiles
// (under the OS temp dir), so only the first run after a change pays for compilation.
import { register } from 'tsx/esm/api';
import { execute } from '@oclif/core';
import process from 'node:process';

/**
 * oclif only takes flags after the command id; operators also write the global flag first
 * (`galleon --daemon-address 10.0.1.10:8090 daemon status`), so move it behind the command.
 * @param {string[]} argv
 * @returns {string[]}
 */
function globalFlagsLast(argv) {
  const front = [];
  let i = 0;
  while (i < argv.length) {
    const arg = argv[i] ?? '';
    if (arg === '--daemon-address' && i + 1 < argv.length) {
      front.push(arg, argv[i + 1] ?? '');
      i += 2;
    } else if (arg.startsWith('--daemon-address=')) {
      front.push(arg);
      i += 1;
    } else {
      break;
    }
  }
  return [...argv.slice(i), ...front];
}

register();
await execute({ dir: import.meta.url, args: globalFlagsLast(process.argv.slice(2)) });
