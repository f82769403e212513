#!/usr/bin/env bash
# Builds kube-apiserver and kubectl from the Go module proxy into $1 (default .cache/kube/<version>).
# No Debian package ships them, so we build k8s.io/kubernetes in a scratch module whose staging
# modules are replaced by their published versions. Reuses the binaries when they are present.
set -euo pipefail
KUBE_VERSION=${KUBE_VERSION:-v1.33.13}
out=${1:-$(pwd)/.cache/kube/$KUBE_VERSION}
mkdir -p "$out"
if [ -x "$out/kube-apiserver" ] && [ -x "$out/kubectl" ]; then
  echo "kube binaries $KUBE_VERSION present in $out"; exit 0
fi
minor=${KUBE_VERSION#v1.}; staging="v0.${minor}"
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
cd "$work"
proxy=$(go env GOPROXY); proxy=${proxy%%,*}; [ -n "$proxy" ] && [ "$proxy" != direct ] || proxy=https://proxy.golang.org
curl -fsSL "$proxy/k8s.io/kubernetes/@v/$KUBE_VERSION.mod" > kube.mod
{
  echo "module herald.dev/kubebuild"
  echo "go 1.24.0"
  echo "require k8s.io/kubernetes $KUBE_VERSION"
  # every staging module that kubernetes replaces with ./staging/... maps to its published version
  grep -E '^\s*k8s.io/[a-z0-9-]+ => \./staging/' kube.mod | awk -v v="$staging" '{print "replace " $1 " => " $1 " " v}'
} > go.mod
cat > tools.go <<'GO'
//go:build tools

package kubebuild

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO
GOFLAGS=-mod=mod go mod tidy -e >/dev/null 2>&1 || true
GOFLAGS=-mod=mod go get k8s.io/kubernetes@$KUBE_VERSION >/dev/null
ld="-s -w -X k8s.io/component-base/version.gitVersion=$KUBE_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=${minor%%.*}"
for cmd in kube-apiserver kubectl; do
  echo "building $cmd $KUBE_VERSION (several minutes on a cold cache)"
  CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags "$ld" -o "$out/$cmd" k8s.io/kubernetes/cmd/$cmd
done
"$out/kube-apiserver" --version
