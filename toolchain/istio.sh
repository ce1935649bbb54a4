#!/usr/bin/env bash
# Builds real Istio from the istio.io/istio Go module (toolchain/istio pins it and every
# dependency): pilot-discovery (istiod), pilot-agent, istioctl, and grpc-xds-client (the test
# workloads' application: a proxyless gRPC client, so each agent shows in proxy-status).
#
# Output: ${ISTIO_CA_CACHE:-$HOME/.cache/istio-ca}/istio-<ISTIO_MODULE_VERSION>/bin/<binary>, with a
# stamp per binary; a binary whose stamp matches is skipped, so a second run is a no-op.
#
# Usage: toolchain/istio.sh [--bin-dir] [--force]
# Environment: ISTIO_CA_CACHE, GO, ISTIO_BUILD_JOBS (go build -p; default nproc capped at 4).
set -euo pipefail

# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
: "${ISTIO_MODULE_VERSION:?versions.env must set ISTIO_MODULE_VERSION}"
: "${ISTIO_VERSION:?versions.env must set ISTIO_VERSION}"

BIN="${CACHE}/istio-${ISTIO_MODULE_VERSION}/bin"
FORCE=0
for arg in "$@"; do
  case "${arg}" in
    --bin-dir) echo "${BIN}"; exit 0 ;;
    --force) FORCE=1 ;;
    *) die "unknown argument: ${arg} (usage: $0 [--bin-dir] [--force])" ;;
  esac
done

grep -Eq "^[[:space:]]*(require[[:space:]]+)?istio.io/istio[[:space:]]+${ISTIO_MODULE_VERSION}\$" "${ROOT}/toolchain/istio/go.mod" ||
  die "toolchain/istio/go.mod does not require istio.io/istio ${ISTIO_MODULE_VERSION} (versions.env and go.mod disagree)"

setup_go ISTIO_BUILD_JOBS
mkdir -p "${BIN}"
GOVERSION="$("${GO}" env GOVERSION)"
# What istio's Makefile sets for a release build (tools/report_build_info.sh); the revision is the
# commit the pseudo-version names.
P=istio.io/istio/pkg/version
LDFLAGS="-s -w -X ${P}.buildVersion=${ISTIO_VERSION} -X ${P}.buildGitRevision=${ISTIO_MODULE_VERSION##*-}"
LDFLAGS+=" -X ${P}.buildStatus=Clean -X ${P}.buildTag=${ISTIO_VERSION} -X ${P}.buildHub=istio-ca.local"
STAMP="istio.io/istio@${ISTIO_MODULE_VERSION} go=${GOVERSION} ldflags=${LDFLAGS} helper=$(cat "${ROOT}/toolchain/istio/grpc-xds-client/main.go" | sha256sum | cut -c1-16)"

NAMES=(pilot-discovery pilot-agent istioctl grpc-xds-client)
PKGS=(istio.io/istio/pilot/cmd/pilot-discovery istio.io/istio/pilot/cmd/pilot-agent istio.io/istio/istioctl/cmd/istioctl ./grpc-xds-client)
todo=() names=()
for i in "${!NAMES[@]}"; do
  n="${NAMES[$i]}"
  if [[ "${FORCE}" == 0 && -x "${BIN}/${n}" && "$(cat "${BIN}/.${n}.stamp" 2>/dev/null)" == "${STAMP}" ]]; then
    log "${n}: up to date (${BIN}/${n})"
  else
    todo+=("${PKGS[$i]}"); names+=("${n}")
  fi
done
if [[ ${#todo[@]} -gt 0 ]]; then
  t0=$SECONDS
  tmp="$(mktemp -d "${BIN}/.build.XXXXXX")"
  log "building ${names[*]} (istio.io/istio ${ISTIO_MODULE_VERSION}, go build -p ${JOBS}; cold: about 20 minutes on 2 cores) ..."
  # One go build: the packages the four share compile once. -o DIR/ names each binary after its package.
  (cd "${ROOT}/toolchain/istio" && "${GO}" build "${GOFLAGS_BUILD[@]}" -ldflags "${LDFLAGS}" -o "${tmp}/" "${todo[@]}") ||
    { rm -rf "${tmp}"; die "go build of ${names[*]} failed (see above)"; }
  for n in "${names[@]}"; do
    [[ -x "${tmp}/${n}" ]] || { rm -rf "${tmp}"; die "go build produced no ${n}"; }
    mv -f "${tmp}/${n}" "${BIN}/${n}"
    echo "${STAMP}" >"${BIN}/.${n}.stamp"
  done
  rm -rf "${tmp}"
  log "built ${names[*]} in $((SECONDS - t0))s"
fi

got="$("${BIN}/istioctl" version --remote=false 2>&1 | head -1 || true)"
[[ "${got}" == *"${ISTIO_VERSION}"* ]] || die "istioctl version says '${got}', expected ${ISTIO_VERSION}"
log "ok: ${BIN} (istio ${ISTIO_VERSION}, istio.io/istio ${ISTIO_MODULE_VERSION})"
