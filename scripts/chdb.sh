#!/usr/bin/env bash
# Prints the path of libchdb.so (the ClickHouse engine as a library) for tests and the
# demo: $CHDB_LIB_PATH if set, else the project cache .cache/chdb, fetched on first use by
# driftd itself (npm package @chdb/lib-linux-x64-gnu at the pinned version, verified
# against the registry's published integrity).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
if [ -n "${CHDB_LIB_PATH:-}" ]; then
  [ -f "$CHDB_LIB_PATH" ] || { echo "chdb: CHDB_LIB_PATH=$CHDB_LIB_PATH does not exist" >&2; exit 1; }
  echo "$CHDB_LIB_PATH"; exit 0
fi
cd "$root"
go run ./cmd/driftd fetch-engine --dir "$root/.cache/chdb"
