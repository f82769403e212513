#!/usr/bin/env bash
# Builds etcd from the Go module proxy into the file $1.
#
#   ETCD_VERSION=v3.6.8 hack/build-etcd.sh OUT
#
# Debian's etcd-server (3.4) is older than newer kube-apiservers expect, so for those the etcd
# release that Kubernetes version is tested with is built from go.etcd.io/etcd/server/v3 (its root
# package is etcd's main) in a scratch module. An existing OUT is never rebuilt; the binary is
# written to a temporary name first and renamed into place, so a reader never sees half a binary.
set -euo pipefail
ETCD_VERSION=${ETCD_VERSION:?set ETCD_VERSION, e.g. v3.6.8}
out=${1:?usage: ETCD_VERSION=vX hack/build-etcd.sh OUT}
case "$out" in /*) ;; *) out="$(pwd)/$out" ;; esac
if [ -x "$out" ]; then
  echo "etcd present: $out"; exit 0
fi
mkdir -p "$(dirname "$out")"
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
cd "$work"
{
  echo "module herald.dev/etcdbuild"
  echo "go 1.24.0"
} > go.mod
# go get lists every module it adds; show that only when it fails
if ! GOFLAGS=-mod=mod go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" >get.log 2>&1; then
  cat get.log >&2; exit 1
fi
echo "building etcd $ETCD_VERSION"
tmp="$(dirname "$out")/.etcd.tmp.$$"
CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags "-s -w" -o "$tmp" go.etcd.io/etcd/server/v3
mv -f "$tmp" "$out"
"$out" --version
