#!/usr/bin/env bash
# Installs what the tests need and is not in node_modules: Debian packages (containerd with its
# CRI plugin, the docker-registry OCI registry, htpasswd, and for real nodes the CNI plugins, iptables,
# conntrack, openssl) and the Go-built Kubernetes binaries (etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler, kubelet, kube-proxy, kubectl, helm, and Prometheus for the scrape test). Does nothing when all
# is present.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

log() { printf '[setup] %s\n' "$*" >&2; }

need_pkgs=()
command -v containerd >/dev/null || need_pkgs+=(containerd)
command -v docker-registry >/dev/null || need_pkgs+=(docker-registry)
command -v htpasswd >/dev/null || need_pkgs+=(apache2-utils)
command -v runc >/dev/null || need_pkgs+=(runc)
# A static busybox: the purge tests run a real container from an image built around it.
[ -x /bin/busybox ] || need_pkgs+=(busybox-static)
# Real nodes (local-cluster/real-cluster.ts): pod networking (bridge CNI), kube-proxy's iptables and conntrack,
# the cluster's certificates, and the namespaces (util-linux unshare/nsenter, iproute2).
[ -x /usr/lib/cni/bridge ] || need_pkgs+=(containernetworking-plugins)
command -v iptables >/dev/null || need_pkgs+=(iptables)
command -v conntrack >/dev/null || need_pkgs+=(conntrack)
command -v openssl >/dev/null || need_pkgs+=(openssl)
command -v ip >/dev/null || need_pkgs+=(iproute2)
command -v nsenter >/dev/null || need_pkgs+=(util-linux)

if [ ${#need_pkgs[@]} -gt 0 ]; then
  log "installing Debian packages: ${need_pkgs[*]}"
  sudo=""
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null || { log "not root and no sudo: install ${need_pkgs[*]} by hand"; exit 1; }
    sudo="sudo"
  fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
  # The package starts a system containerd; the tests run their own instances, one per node.
  if command -v systemctl >/dev/null && systemctl is-active --quiet containerd 2>/dev/null; then
    $sudo systemctl disable --now containerd >/dev/null 2>&1 || true
  fi
fi

if ! command -v go >/dev/null; then
  if [ -x /usr/local/go/bin/go ]; then
    export PATH="/usr/local/go/bin:$PATH"
  else
    log "go not found: install Go >= 1.24 (it builds etcd, kube-apiserver, kubectl and helm once)"
    exit 1
  fi
fi

start=$SECONDS
bash "$here/build-binaries.sh" all >/dev/null
log "tools ready in $((SECONDS - start)) s"
