/**
 * CLI startup time: wall time of `galleon --help` and of a client command that fails
 * fast (no daemon), from the transpiled cache against the tsx reference (GALLEON_NO_CACHE=1).
 * Run: npm run bench:cli
 */
import { spawnSync } from 'node:child_process';
import { binPath, repoRoot } from '../cli/helpers.js';

const runs = 7;

function once(args: string[], env: Record<string, string>): number {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(process.execPath, [binPath, ...args], { cwd: repoRoot, env: { ...process.env, ...env }, encoding: 'utf8' });
  const wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.error !== undefined) throw r.error;
  return wallMs;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? 0;
}

function measure(label: string, args: string[], env: Record<string, string>): number {
  once(args, env); // warm the cache (and tsx's)
  const wall: number[] = [];
  for (let i = 0; i < runs; i += 1) wall.push(once(args, env));
  const m = median(wall);
  console.log(`${label.padEnd(44)} median ${m.toFixed(0).padStart(5)} ms  (min ${Math.min(...wall).toFixed(0)}, max ${Math.max(...wall).toFixed(0)}, ${runs} runs)`);
  return m;
}

const noDaemon = { GALLEON_ADDRESS: '127.0.0.1:1' };
const help = measure('galleon --help (cache)', ['--help'], {});
const helpTsx = measure('galleon --help (tsx reference)', ['--help'], { GALLEON_NO_CACHE: '1' });
const list = measure('galleon volume list, no daemon (cache)', ['volume', 'list'], noDaemon);
const listTsx = measure('galleon volume list, no daemon (tsx reference)', ['volume', 'list'], { ...noDaemon, GALLEON_NO_CACHE: '1' });
console.log(`speed-up: --help ${(helpTsx / help).toFixed(2)}x, volume list ${(listTsx / list).toFixed(2)}x`);
