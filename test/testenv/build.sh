#!/usr/bin/env bash
# Builds (or reuses) the test environment's binaries: kube-apiserver, kubectl, etcd, helm.
# Versions come from versions.env (one source of truth). Binaries are cached per version set under
# ${XDG_CACHE_HOME:-$HOME/.cache}/smartnat/testenv/<key>/, so a second run and CI on the same machine
# do not rebuild. When KUBEBUILDER_ASSETS is set, its kube-apiserver and etcd (and its kubectl, if it
# has one) are used and only the rest is built; the answer is then a directory of symlinks beside the
# cache, so the cache itself only ever holds binaries built here. Progress goes to stderr; stdout gets
# exactly one line: the absolute directory holding all four binaries.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"
log() { printf 'testenv: %s\n' "$*" >&2; }

# The cache key covers the versions, the wrapper modules and the Go version, so a changed go.sum or
# toolchain rebuilds. Go itself is only required when something is missing.
goversion="$(go env GOVERSION 2>/dev/null || echo no-go)"
key_src="$(cat "$here/versions.env" "$here"/*/go.sum "$here"/*/go.mod; echo "$goversion")"
key="$(printf '%s' "$key_src" | sha256sum | cut -c1-16)"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/smartnat/testenv/${KUBERNETES_VERSION}-etcd${ETCD_VERSION}-helm${HELM_VERSION}-${key}"
mkdir -p "$cache"
# Two runs at once (two test runs on one machine) would build into the same files: take turns.
exec 9>"$cache/.lock"
flock 9

minor="$(echo "$KUBERNETES_VERSION" | cut -d. -f2)"
export CGO_ENABLED=0 GOFLAGS="-trimpath -buildvcs=false" GOTOOLCHAIN=local

build() { # name, module dir, package, ldflags
  local name="$1" dir="$2" pkg="$3" ldflags="$4"
  # A symlink here is a leftover of an older version of this script (KUBEBUILDER_ASSETS): replace it.
  if [ -x "$cache/$name" ] && [ ! -L "$cache/$name" ]; then return; fi
  rm -f "$cache/$name"
  command -v go >/dev/null || { log "Go is required to build $name (or set KUBEBUILDER_ASSETS)"; exit 1; }
  log "building $name ($pkg) — cold builds take minutes"
  local start=$SECONDS
  (cd "$here/$dir" && go build -ldflags "$ldflags" -o "$cache/$name.tmp" "$pkg")
  mv "$cache/$name.tmp" "$cache/$name"
  log "built $name in $((SECONDS - start)) s"
}

V=k8s.io/component-base/version; C=k8s.io/client-go/pkg/version
k8s_ldflags="-s -w -X $V.gitVersion=$KUBERNETES_VERSION -X $V.gitMajor=1 -X $V.gitMinor=$minor \
 -X $V.gitCommit=0000000000000000000000000000000000000000 -X $V.gitTreeState=clean \
 -X $V.buildDate=2026-01-01T00:00:00Z \
 -X $C.gitVersion=$KUBERNETES_VERSION -X $C.gitMajor=1 -X $C.gitMinor=$minor"

if [ -z "${KUBEBUILDER_ASSETS:-}" ]; then
  build etcd etcd go.etcd.io/etcd/server/v3 "-s -w"
  build kube-apiserver apiserver k8s.io/kubernetes/cmd/kube-apiserver "$k8s_ldflags"
  build kubectl apiserver k8s.io/kubernetes/cmd/kubectl "$k8s_ldflags"
  build helm helm helm.sh/helm/v4/cmd/helm "-s -w -X helm.sh/helm/v4/internal/version.version=$HELM_VERSION"
  echo "$cache"
  exit 0
fi

assets="$(cd "$KUBEBUILDER_ASSETS" && pwd)" || { log "KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS is not a directory"; exit 1; }
for b in kube-apiserver etcd; do
  [ -x "$assets/$b" ] || { log "KUBEBUILDER_ASSETS=$assets has no executable $b"; exit 1; }
done
# Which kubectl: the assets' own (setup-envtest ships one matching its server), else ours.
if [ -x "$assets/kubectl" ]; then kubectl="$assets/kubectl"; else
  build kubectl apiserver k8s.io/kubernetes/cmd/kubectl "$k8s_ldflags"; kubectl="$cache/kubectl"
fi
build helm helm helm.sh/helm/v4/cmd/helm "-s -w -X helm.sh/helm/v4/internal/version.version=$HELM_VERSION"
# One directory of symlinks per assets directory, next to the cache (never inside it).
link_dir="$cache-assets-$(printf '%s' "$assets" | sha256sum | cut -c1-12)"
mkdir -p "$link_dir"
for pair in "kube-apiserver=$assets/kube-apiserver" "etcd=$assets/etcd" "kubectl=$kubectl" "helm=$cache/helm"; do
  ln -sfn "${pair#*=}" "$link_dir/${pair%%=*}"
done
log "using kube-apiserver and etcd from KUBEBUILDER_ASSETS=$assets"
echo "$link_dir"
