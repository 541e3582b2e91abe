import { readFileSync } from 'node:fs';

/** CPU seconds (user + system, every thread: LevelDB's compaction included) a process has used so far, from /proc (Linux); 0 when it is gone. */
export function cpuSeconds(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return 0;
  }
}
