/**
 * V8 flags for every process that runs a data node (the data-node process, the daemon).
 *
 * A data node moves block bodies through large short-lived buffers (request bodies, socket
 * reads). Their bytes count against V8's heap growth limits, which for a heap as small as a
 * data node's (~20 MB) are tiny, so V8 ran a full mark-compact every 50–80 ms under a 1 MiB
 * write load: 80 of them in 9 s, and 40 % of the node's CPU went to marking. With a larger
 * initial heap the limits start (and stay) higher: measured on 1 MiB replicated writes, CPU per
 * MiB on each node fell from ~4.0 ms to ~2.2 ms (`.scratch`-style runs of 3 nodes, 64 in
 * flight). The heap does not take this memory up front; it may hold up to this much garbage
 * between collections.
 *
 * Heap sizing flags are refused in NODE_OPTIONS and ignored when set at run time, so they go on
 * node's command line: the spawners pass these, and cli/bin/run.js names the same flag in its
 * shebang line for a daemon started by hand.
 */
export const dataNodeV8Flags: readonly string[] = ['--initial-heap-size=256'];
