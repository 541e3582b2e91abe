#!/bin/sh
# Runs an already-built pjdfstest against a directory of a mounted volume (as root) and prints
# prove's per-file result and summary. Fetches and builds nothing: vfs/README.md, "POSIX
# conformance", says how to build the suite outside the project.
#   test/posix/run-pjdfstest.sh PJDFSTEST_DIR MOUNTED_DIR [TEST_FILE_OR_DIR ...]
set -eu
suite=${1:?usage: run-pjdfstest.sh PJDFSTEST_DIR MOUNTED_DIR [TEST_FILE_OR_DIR ...]}
target=${2:?usage: run-pjdfstest.sh PJDFSTEST_DIR MOUNTED_DIR [TEST_FILE_OR_DIR ...]}
shift 2
if [ ! -x "$suite/pjdfstest" ]; then
  echo "no $suite/pjdfstest: build it first (autoreconf -ifs && ./configure && make pjdfstest in that folder)" >&2
  exit 2
fi
if [ "$(id -u)" != 0 ]; then echo "pjdfstest switches users: run it as root" >&2; exit 2; fi
suite=$(cd "$suite" && pwd)
work=$(mktemp -d "$target/pjdfstest.XXXXXX")
# The suite's other users must reach its files; everything it made goes at exit.
chmod 0755 "$work"
trap 'cd /; rm -rf "$work"' EXIT INT TERM
cd "$work"
[ $# -gt 0 ] || set -- "$suite/tests"
prove -r "$@"
