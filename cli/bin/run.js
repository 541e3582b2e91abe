#!/usr/bin/env node
// The `galleon` binary. Commands are TypeScript run through tsx, which caches what it compiles
// (under the OS temp dir), so only the first run after a change pays for compilation.
import { register } from 'tsx/esm/api';
import { execute } from '@oclif/core';

register();
await execute({ dir: import.meta.url });
