#!/bin/bash
# Old against new: test/bench/epoch-write.bench.ts in two checkouts at the same moment (both see the
# same neighbours on a shared machine), ROUNDS times, swapping which one starts first.
#
#   mkdir /tmp/galleon-old && git archive <commit> | tar -x -C /tmp/galleon-old && ln -s "$PWD/node_modules" /tmp/galleon-old/
#   test/bench/epoch-write-ab.sh 3 /tmp/galleon-old .
#
# The bench file is copied into the old tree (it only uses LevelBlockStore.open and write).
# env: BENCH_BLOCKS, BENCH_ROUNDS (passed through).
set -u
rounds=$1; a=$(cd "$2" && pwd); b=$(cd "$3" && pwd)
cp "$b/test/bench/epoch-write.bench.ts" "$a/test/bench/epoch-write.bench.ts"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
one() { (cd "$1" && npx tsx test/bench/epoch-write.bench.ts 2>&1); }
for i in $(seq 1 "$rounds"); do
  if [ $((i % 2)) = 1 ]; then first=$a; second=$b; else first=$b; second=$a; fi
  one "$first" > "$out/$(basename "$first").txt" & p1=$!
  one "$second" > "$out/$(basename "$second").txt" & p2=$!
  wait $p1 $p2
  echo "== set $i $(date +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "  old ($a):"; sed 's/^/    /' "$out/$(basename "$a").txt"
  echo "  new ($b):"; sed 's/^/    /' "$out/$(basename "$b").txt"
done
