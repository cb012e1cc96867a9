#!/usr/bin/env bash
# Fetches the ClickHouse engine as a library (libchdb.so from the npm package
# @chdb/lib-linux-x64-gnu at a pinned version), verifies it, caches it under .cache/chdb,
# and prints the path of libchdb.so. With CHDB_LIB_PATH set to an existing file, prints that.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
version=${CHDB_VERSION:-26.5.3}
# sha1 of the npm tarball as the registry publishes it (npm view ... dist.shasum).
shasum_expected=${CHDB_SHASUM:-3e52ecb7d894d9ebb1a6a50ac03f64208cc65501}
dir="$root/.cache/chdb"
lib="$dir/package/libchdb.so"

if [ -n "${CHDB_LIB_PATH:-}" ]; then
  [ -f "$CHDB_LIB_PATH" ] || { echo "chdb: CHDB_LIB_PATH=$CHDB_LIB_PATH does not exist" >&2; exit 1; }
  echo "$CHDB_LIB_PATH"; exit 0
fi
if [ -f "$lib" ] && [ "$(cat "$dir/version" 2>/dev/null)" = "$version" ]; then
  echo "$lib"; exit 0
fi
command -v npm >/dev/null || { echo "chdb: npm is needed to fetch @chdb/lib-linux-x64-gnu (or set CHDB_LIB_PATH)" >&2; exit 1; }
mkdir -p "$dir"
echo "chdb: fetching @chdb/lib-linux-x64-gnu@$version (about 170 MB) into $dir" >&2
tarball=$(cd "$dir" && npm pack --silent "@chdb/lib-linux-x64-gnu@$version" | tail -1)
got=$(sha1sum "$dir/$tarball" | cut -d' ' -f1)
if [ "$got" != "$shasum_expected" ]; then
  echo "chdb: checksum mismatch for $tarball: got $got, want $shasum_expected" >&2
  rm -f "$dir/$tarball"; exit 1
fi
rm -rf "$dir/package"
tar -xzf "$dir/$tarball" -C "$dir" package/libchdb.so package/package.json
rm -f "$dir/$tarball"
echo "$version" >"$dir/version"
echo "$lib"
