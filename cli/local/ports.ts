/** Free loopback ports for a local cluster: the preferred one when it is free, else one the OS picks. */
import { createServer } from 'node:net';

export function isPortFree(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, host, () => srv.close(() => resolve(true)));
  });
}

export function osFreePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** Picks `count` distinct ports, trying `preferred[i]` first (null: let the OS choose). */
export async function pickPorts(preferred: (number | null)[], taken = new Set<number>()): Promise<number[]> {
  const out: number[] = [];
  for (const want of preferred) {
    let port: number | null = null;
    if (want !== null && !taken.has(want) && (await isPortFree(want))) port = want;
    while (port === null || taken.has(port)) port = await osFreePort();
    taken.add(port);
    out.push(port);
  }
  return out;
}
