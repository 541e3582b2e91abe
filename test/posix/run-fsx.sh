#!/bin/sh
# Runs fsx (LTP's standalone fsx-linux) against a file of a mounted volume: for each seed, once
# with mmap reads and writes and once with read()/write() only; then fsstress briefly if its
# binary is given. Any fsx failure is a data bug. Fetches and builds nothing (vfs/README.md,
# "POSIX conformance").
#   test/posix/run-fsx.sh FSX_BINARY MOUNTED_DIR [NUM_OPS] [SEEDS] [FSSTRESS_BINARY]
set -eu
fsx=${1:?usage: run-fsx.sh FSX_BINARY MOUNTED_DIR [NUM_OPS] [SEEDS] [FSSTRESS_BINARY]}
target=${2:?usage: run-fsx.sh FSX_BINARY MOUNTED_DIR [NUM_OPS] [SEEDS] [FSSTRESS_BINARY]}
ops=${3:-20000}
seeds=${4:-1 2}
fsstress=${5:-}
work=$(mktemp -d "$target/fsx.XXXXXX")
logs=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM
failed=0
for seed in $seeds; do
  for mode in mmap plain; do
    flags=''
    [ "$mode" = plain ] && flags='-R -W'
    # shellcheck disable=SC2086 # flags is a list of options
    if "$fsx" -q -N "$ops" -S "$seed" $flags -P "$logs" "$work/f-$seed-$mode" > "$logs/out-$seed-$mode" 2>&1; then
      echo "fsx seed $seed $mode $ops ops: ok"
    else
      echo "fsx seed $seed $mode $ops ops: FAILED (log: $logs/out-$seed-$mode and $logs/f-$seed-$mode.fsxlog)"
      failed=1
    fi
  done
done
if [ -n "$fsstress" ]; then
  mkdir "$work/stress"
  if "$fsstress" -d "$work/stress" -n 200 -p 4 -s 1 > "$logs/fsstress" 2>&1; then echo "fsstress -n 200 -p 4: ok"
  else echo "fsstress -n 200 -p 4: FAILED (log: $logs/fsstress)"; failed=1; fi
fi
echo "logs in $logs"
exit $failed
