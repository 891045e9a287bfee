#!/usr/bin/env bash
# Builds the Kubernetes binaries the tests run (kube-apiserver, kube-controller-manager, kube-scheduler,
# kubelet, kube-proxy, kubectl, etcd, helm, and Prometheus) from their Go modules, once per pinned version, into a cache outside git.
#
#   local-cluster/tools/build-binaries.sh            # build what is missing, print the bin dir
#   KWARM_CACHE=/somewhere local-cluster/tools/build-binaries.sh
#
# The pins live in local-cluster/tools/versions.env; changing one rebuilds only what it names.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"

cache=${KWARM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kwarm}
bin="$cache/bin"
work="$cache/build"
mkdir -p "$bin" "$work"

log() { printf '[build-binaries] %s\n' "$*" >&2; }

command -v go >/dev/null || { log "go is not on PATH; install Go >= 1.24 first"; exit 1; }

export GOFLAGS="-buildvcs=false -mod=mod"
export CGO_ENABLED=0

stamp_ok() { [ -x "$bin/$1" ] && [ "$(cat "$bin/.$1.version" 2>/dev/null)" = "$2" ]; }
stamp() { echo "$2" > "$bin/.$1.version"; }

timed() {
  local start=$SECONDS
  "$@"
  log "$1 took $((SECONDS - start)) s"
}

build_kubernetes() {
  local want="v$K8S_VERSION"
  local names=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl) missing=0
  for b in "${names[@]}"; do stamp_ok "$b" "$want" || missing=1; done
  [ "$missing" = 1 ] || return 0
  log "building ${names[*]} $want (one time, about 15 minutes on 2 cores)"
  local dir="$work/kubernetes-$want" staging="v0.${K8S_VERSION#1.}"
  rm -rf "$dir" && mkdir -p "$dir" && cd "$dir"
  printf 'module kwarm.local/kubernetes-binaries\n\ngo 1.24\n' > go.mod
  # k8s.io/kubernetes points its staging modules at ./staging with replace directives, which only
  # apply inside its own repository; here each one is pinned to the published module of the same release.
  local gomod
  gomod=$(go mod download -json "k8s.io/kubernetes@$want" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
  local edits=()
  while read -r mod; do
    edits+=("-replace=$mod=$mod@$staging")
  done < <(sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/.*#\1#p' "$gomod")
  [ ${#edits[@]} -gt 10 ] || { log "could not read staging modules from $gomod"; exit 1; }
  go mod edit "${edits[@]}" "-require=k8s.io/kubernetes@$want"
  local pkgs=("${names[@]/#/k8s.io/kubernetes/cmd/}")
  go get "${pkgs[@]/%/@$want}"
  local v=k8s.io/component-base/version c=k8s.io/client-go/pkg/version
  local minor=${K8S_VERSION#1.}; minor=${minor%%.*}
  local ld="-s -w"
  for p in $v $c; do
    ld+=" -X $p.gitVersion=$want -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
  done
  go build -trimpath -ldflags "$ld" -o "$bin/" "${pkgs[@]}"
  for b in "${names[@]}"; do stamp "$b" "$want"; done
}

build_etcd() {
  local want="v$ETCD_VERSION"
  stamp_ok etcd "$want" && return
  log "building etcd $want"
  local dir="$work/etcd-$want"
  rm -rf "$dir" && mkdir -p "$dir" && cd "$dir"
  printf 'module kwarm.local/etcd-binary\n\ngo 1.24\n' > go.mod
  cat > main.go <<'EOF'
// The etcd server entry point, built from the published go.etcd.io/etcd/server/v3 module.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
EOF
  go get "go.etcd.io/etcd/server/v3@$want"
  go build -trimpath -ldflags "-s -w" -o "$bin/etcd" .
  stamp etcd "$want"
}

build_helm() {
  local minor=${K8S_VERSION#1.}; minor=${minor%%.*}
  # Helm's default capabilities (what `helm template` and `helm lint` assume) follow the Kubernetes pin.
  local want="v$HELM_VERSION+k8s1.$minor"
  stamp_ok helm "$want" && return
  log "building helm $want"
  local ld="-s -w -X helm.sh/helm/v3/internal/version.version=v$HELM_VERSION"
  for p in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
    ld+=" -X $p.k8sVersionMajor=1 -X $p.k8sVersionMinor=$minor"
  done
  GOBIN="$bin" go install -trimpath -ldflags "$ld" "helm.sh/helm/v3/cmd/helm@v$HELM_VERSION"
  stamp helm "$want"
}

# Prometheus for the scrape test (local-cluster/prometheus.ts). Debian's package is built without Kubernetes
# service discovery (its changelog: "Kubernetes support has been completely removed"), which kwarm's scrape config
# and every in-cluster Prometheus use; the published module has it. Its web UI assets are not in the module:
# the HTTP API, which the test uses, is.
build_prometheus() {
  local want="v$PROMETHEUS_VERSION"
  stamp_ok prometheus "$want" && return
  log "building prometheus $want (module v$PROMETHEUS_MODULE_VERSION; one time, several minutes on 2 cores)"
  local dir="$work/prometheus-$want"
  rm -rf "$dir" && mkdir -p "$dir" && cd "$dir"
  printf 'module kwarm.local/prometheus-binary\n\ngo 1.24\n' > go.mod
  go get "github.com/prometheus/prometheus/cmd/prometheus@v$PROMETHEUS_MODULE_VERSION"
  go build -trimpath -ldflags "-s -w -X github.com/prometheus/common/version.Version=$PROMETHEUS_VERSION" \
    -o "$bin/prometheus" github.com/prometheus/prometheus/cmd/prometheus
  stamp prometheus "$want"
}

what=${1:-all}
case "$what" in
  # Prometheus is not in `all`: with every discovery plugin it took over an hour to build here under load, too much
  # for npm test's budget on a fresh machine. `npm run test:prometheus` builds it and runs the scrape test.
  # etcd and helm build beside Kubernetes rather than before and after it: each build starts with a download of
  # its module graph (Kubernetes' took 69 s here), which waits on the network while another build compiles.
  all)
    trap 'kill $(jobs -p) 2>/dev/null || true' EXIT
    timed build_etcd & etcd_pid=$!
    timed build_helm & helm_pid=$!
    timed build_kubernetes
    wait "$etcd_pid"
    wait "$helm_pid"
    trap - EXIT ;;
  etcd) timed build_etcd ;;
  kubernetes) timed build_kubernetes ;;
  helm) timed build_helm ;;
  prometheus) timed build_prometheus ;;
  *) log "unknown target $what (all, etcd, kubernetes, helm, prometheus)"; exit 2 ;;
esac
echo "$bin"
