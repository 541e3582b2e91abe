#!/bin/bash
# Old against new small-write CPU, both at the same moment (so both see the same neighbours on a
# shared machine): runs `npm run bench:dataplane` with BENCH_ONLY=small in two checkouts at once,
# ROUNDS times, and prints each side's IOPS and CPU µs per 4 KiB write (client + each node).
#
#   git worktree add /tmp/galleon-old <commit> && ln -s "$PWD/node_modules" /tmp/galleon-old/
#   test/bench/dataplane-ab.sh 3 /tmp/galleon-old .
#
# env: CONCERNS (default replicated,durable), SECS per phase (default 5). Swap the two
# directories between sets: the one started first may get a head start.
set -u
rounds=$1; a=$(cd "$2" && pwd); b=$(cd "$3" && pwd)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
one() { (cd "$1" && BENCH_ONLY=small BENCH_CONCERNS=${CONCERNS:-replicated,durable} BENCH_SECONDS=${SECS:-5} npx tsx test/bench/dataplane.bench.ts 2>&1); }
for i in $(seq 1 "$rounds"); do
  one "$a" > "$out/a.txt" & pa=$!
  one "$b" > "$out/b.txt" & pb=$!
  wait $pa $pb
  for side in a b; do
    d=$([ $side = a ] && echo "$a" || echo "$b")
    echo "== $d round $i $(date +%T) $(grep 'load average' "$out/$side.txt")"
    grep -E 'rand write 4 KiB' "$out/$side.txt" | sed 's/\x1b\[[0-9;]*m//g' | awk -F'│' '{print "   " $2 $3}'
    grep -E '^  (durable|replicated|acknowledged|distributed) ' "$out/$side.txt"
  done
done
