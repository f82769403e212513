#!/usr/bin/env bash
# Builds Kubernetes binaries from the Go module proxy into $1 (default .cache/kube/<version>).
#
#   hack/build-kube.sh [DIR] [COMMAND...]
#
# COMMANDs are names under k8s.io/kubernetes/cmd (default: kube-apiserver kubectl; the cluster lab
# also needs kubelet kube-proxy kube-controller-manager kube-scheduler). No Debian package ships
# them, so we build k8s.io/kubernetes in a scratch module whose staging modules are replaced by
# their published versions. A binary already present is never rebuilt; each one is written to a
# temporary name first and renamed into place, so a reader never sees half a binary.
set -euo pipefail
KUBE_VERSION=${KUBE_VERSION:-v1.33.13}
out=${1:-$(pwd)/.cache/kube/$KUBE_VERSION}
shift || true
cmds=("$@")
[ ${#cmds[@]} -gt 0 ] || cmds=(kube-apiserver kubectl)
mkdir -p "$out"
todo=()
for cmd in "${cmds[@]}"; do
  [ -x "$out/$cmd" ] || todo+=("$cmd")
done
if [ ${#todo[@]} -eq 0 ]; then
  echo "kube binaries $KUBE_VERSION present in $out: ${cmds[*]}"; exit 0
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
{
  echo "//go:build tools"
  echo
  echo "package kubebuild"
  echo
  echo "import ("
  for cmd in "${todo[@]}"; do echo "	_ \"k8s.io/kubernetes/cmd/$cmd\""; done
  echo ")"
} > tools.go
GOFLAGS=-mod=mod go mod tidy -e >/dev/null 2>&1 || true
GOFLAGS=-mod=mod go get k8s.io/kubernetes@$KUBE_VERSION >/dev/null
ld="-s -w -X k8s.io/component-base/version.gitVersion=$KUBE_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=${minor%%.*}"
for cmd in "${todo[@]}"; do
  echo "building $cmd $KUBE_VERSION (several minutes on a cold cache)"
  CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags "$ld" -o "$out/.$cmd.tmp.$$" k8s.io/kubernetes/cmd/$cmd
  mv -f "$out/.$cmd.tmp.$$" "$out/$cmd"
  "$out/$cmd" --version 2>/dev/null || true
done
