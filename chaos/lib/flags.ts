/** Flag checks for the chaos scripts: a bad value is one line on stderr and exit code 2. */

export function integerFlag(name: string, raw: string | undefined, min: number): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) usageError(`--${name} must be an integer >= ${min}, got ${raw}`);
  return n;
}

export function fractionFlag(name: string, raw: string | undefined): number {
  const n = Number(raw);
  if (!(n >= 0 && n <= 1)) usageError(`--${name} must be a number from 0 to 1, got ${raw}`);
  return n;
}

/** A run without --seed picks one, and prints it in its replay line. */
export function seedFlag(raw: string | undefined): number {
  return raw === undefined ? Date.now() % 1_000_000 : integerFlag('seed', raw, 0);
}

function usageError(message: string): never {
  console.error(`chaos: ${message}`);
  process.exit(2);
}
