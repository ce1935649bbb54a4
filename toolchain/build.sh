#!/usr/bin/env bash
# Builds everything the end-to-end tests need, from Go modules through the Go module proxy
# (nothing here can be downloaded prebuilt): the Pulumi CLI, the kubernetes / tls / command
# provider plugins, a local control plane (etcd, kube-apiserver, controller-manager,
# scheduler, kubectl, kwok) and real Istio (pilot-discovery, pilot-agent, istioctl). Each part is cached by version under
# ${ISTIO_CA_CACHE:-~/.cache/istio-ca}; a warm run only checks stamps.
#
# Usage: toolchain/build.sh [--print-env] [--force]
#   --print-env  print the environment the tests need (export lines); builds nothing
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

if [[ "${1:-}" == "--print-env" ]]; then
  exec bash "${HERE}/pulumi.sh" --print-env
fi

START=$SECONDS
step() { printf '[toolchain %4ds] %s\n' "$((SECONDS - START))" "$*" >&2; }

# Istio is the largest build and shares nothing with the rest: it runs beside them (on 2 cores
# the builds interleave; downloads and links overlap with compiles).
step "Istio (in the background)"
bash "${HERE}/istio.sh" "$@" &
ISTIO_PID=$!
trap 'kill "${ISTIO_PID}" 2>/dev/null || true' EXIT

# The CLI first: the provider scripts install their plugins with it.
step "Pulumi CLI + kubernetes provider"
bash "${HERE}/pulumi.sh" "$@"
step "tls provider"
bash "${HERE}/provider-tls.sh" "$@"
step "command provider (stand-in)"
bash "${HERE}/provider-command.sh" "$@"
step "control plane"
bash "${HERE}/cluster.sh" "$@"
step "waiting for Istio"
wait "${ISTIO_PID}" || { step "Istio build failed (see above)"; exit 1; }
trap - EXIT
step "toolchain ready"
