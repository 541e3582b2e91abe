/** `galleon volum list` and friends: the same one-line error as every other failure, exit 2. */
import type { Hook } from '@oclif/core';

const hook: Hook<'command_not_found'> = function (opts) {
  const typed = opts.id.replaceAll(':', ' ');
  const topic = opts.id.split(':')[0] ?? '';
  const known = opts.config.commands.some((c) => c.id.startsWith(`${topic}:`));
  const hint = known ? `see \`galleon ${topic} --help\`` : 'see `galleon --help` for the commands';
  process.stderr.write(`Error: unknown command "${typed}" — ${hint}\n`);
  process.exit(2);
};

export default hook;
