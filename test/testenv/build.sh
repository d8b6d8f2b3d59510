#!/usr/bin/env bash
# Builds (or reuses) the test environment's binaries: kube-apiserver, kubectl, etcd, helm.
# Versions come from versions.env (one source of truth). Binaries are cached per version set under
# ${XDG_CACHE_HOME:-$HOME/.cache}/smartnat/testenv/<key>/, so a second run and CI on the same machine
# do not rebuild. When KUBEBUILDER_ASSETS is set, its kube-apiserver and etcd are used and only the
# rest is built. Progress goes to stderr; stdout gets exactly one line: the absolute directory
# holding all four binaries.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"
log() { printf 'testenv: %s\n' "$*" >&2; }

command -v go >/dev/null || { log "Go is required to build the test binaries (or set KUBEBUILDER_ASSETS and provide kubectl/helm)"; exit 1; }

# The cache key covers the versions and the wrapper modules, so a changed go.sum rebuilds.
key_src="$(cat "$here/versions.env" "$here"/*/go.sum "$here"/*/go.mod; go env GOVERSION)"
key="$(printf '%s' "$key_src" | sha256sum | cut -c1-16)"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/smartnat/testenv/${KUBERNETES_VERSION}-etcd${ETCD_VERSION}-helm${HELM_VERSION}-${key}"
mkdir -p "$cache"

minor="$(echo "$KUBERNETES_VERSION" | cut -d. -f2)"
export CGO_ENABLED=0 GOFLAGS="-trimpath -buildvcs=false" GOTOOLCHAIN=local

build() { # name, module dir, package, ldflags
  local name="$1" dir="$2" pkg="$3" ldflags="$4"
  if [ -x "$cache/$name" ]; then return; fi
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

if [ -n "${KUBEBUILDER_ASSETS:-}" ]; then
  for b in kube-apiserver etcd; do
    [ -x "$KUBEBUILDER_ASSETS/$b" ] || { log "KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS has no executable $b"; exit 1; }
    ln -sf "$KUBEBUILDER_ASSETS/$b" "$cache/$b.tmp" && mv -f "$cache/$b.tmp" "$cache/$b"
  done
  log "using kube-apiserver and etcd from KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS"
else
  build etcd etcd go.etcd.io/etcd/server/v3 "-s -w"
  build kube-apiserver apiserver k8s.io/kubernetes/cmd/kube-apiserver "$k8s_ldflags"
fi
build kubectl apiserver k8s.io/kubernetes/cmd/kubectl "$k8s_ldflags"
build helm helm helm.sh/helm/v4/cmd/helm "-s -w -X helm.sh/helm/v4/internal/version.version=$HELM_VERSION"

echo "$cache"
