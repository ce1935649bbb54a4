#!/usr/bin/env bash
# Builds the local control plane used by the tests and by `npm run cluster:up`:
#   etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, kwok
# from Go modules only (no Docker, no GitHub): the wrapper modules under toolchain/{etcd,kubernetes,kwok}
# pin every dependency (go.mod + go.sum); versions come from toolchain/versions.env.
#
# Output: ${ISTIO_CA_CACHE:-$HOME/.cache/istio-ca}/cluster-<KUBE_VERSION>/bin/<binary>
# with a stamp file bin/.<binary>.stamp recording what was built; a binary whose stamp matches is
# skipped, so a second run is a no-op.
#
# Usage: toolchain/cluster.sh [--bin-dir] [--force] [--regen-kube-wrapper]
#   --bin-dir             print the binary directory and exit (nothing is built)
#   --force               rebuild even when the stamps match
#   --regen-kube-wrapper  rewrite toolchain/kubernetes/go.mod for KUBE_VERSION (derives the staging
#                         replaces from k8s.io/kubernetes' go.mod), run go mod tidy, then build.
#                         To bump Kubernetes: edit KUBE_VERSION in versions.env, run with this flag.
# Environment: ISTIO_CA_CACHE, GO (default: go), CLUSTER_BUILD_JOBS (go build -p, default: nproc
# capped at 4; a kube-apiserver link needs ~2-3 GiB, so parallel packages are what costs memory).
set -euo pipefail

# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
: "${KUBE_VERSION:?versions.env must set KUBE_VERSION}"
: "${ETCD_VERSION:?versions.env must set ETCD_VERSION}"
: "${KWOK_VERSION:?versions.env must set KWOK_VERSION}"

BIN="${CACHE}/cluster-${KUBE_VERSION}/bin"
FORCE=0
REGEN=0
for arg in "$@"; do
  case "${arg}" in
    --bin-dir) echo "${BIN}"; exit 0 ;;
    --force) FORCE=1 ;;
    --regen-kube-wrapper) REGEN=1 ;;
    *) die "unknown argument: ${arg} (usage: $0 [--bin-dir] [--force] [--regen-kube-wrapper])" ;;
  esac
done

setup_go CLUSTER_BUILD_JOBS
mkdir -p "${BIN}"


# toolchain/kubernetes/go.mod: require k8s.io/kubernetes and replace every staging module it
# requires at v0.0.0 with the published v0.<minor>.<patch> of the same release.
regen_kube_wrapper() {
  local upstream staging gover dir="${ROOT}/toolchain/kubernetes"
  upstream="$(cd "${dir}" && GOFLAGS=-mod=mod "${GO}" mod download -json "k8s.io/kubernetes@${KUBE_VERSION}" |
    sed -n 's/.*"GoMod": "\(.*\)",*/\1/p')"
  [[ -f "${upstream}" ]] || die "cannot download k8s.io/kubernetes@${KUBE_VERSION}'s go.mod"
  staging="v0.${KUBE_VERSION#v1.}"
  gover="$(sed -n 's/^go \([0-9.]*\)$/\1/p' "${upstream}")"
  {
    printf '%s\n' \
      "// Wrapper module that builds the Kubernetes control-plane binaries (kube-apiserver," \
      "// kube-controller-manager, kube-scheduler, kubectl) from the published k8s.io/kubernetes module." \
      "//" \
      "// WHY a wrapper: k8s.io/kubernetes' own go.mod requires every staging module (k8s.io/api," \
      "// k8s.io/client-go, ...) at the non-existent version v0.0.0 and replaces them with" \
      "// ./staging/src/k8s.io/X. Replace directives of a dependency are ignored, so" \
      "// \"go install k8s.io/kubernetes/cmd/kube-apiserver@${KUBE_VERSION}\" is refused. Here each staging" \
      "// module is replaced with its published release ${staging} (same release as ${KUBE_VERSION})." \
      "// Written by toolchain/cluster.sh --regen-kube-wrapper (then go mod tidy)." \
      "module istio-ca/toolchain/kubernetes" "" "go ${gover}" "" "require k8s.io/kubernetes ${KUBE_VERSION}" "" "replace ("
    grep -E '^[[:space:]]+k8s.io/[a-z0-9-]+ v0\.0\.0$' "${upstream}" | awk -v s="${staging}" '{printf "\t%s => %s %s\n", $1, $1, s}'
    echo ")"
  } >"${dir}/go.mod"
  rm -f "${dir}/go.sum"
  (cd "${dir}" && "${GO}" mod tidy) || die "go mod tidy failed in toolchain/kubernetes (are all staging modules ${staging} served?)"
  log "rewrote toolchain/kubernetes/go.mod and go.sum for ${KUBE_VERSION}"
}
[[ "${REGEN}" == 0 ]] || regen_kube_wrapper

# The wrapper go.mod must require exactly the version versions.env names.
check_pin() { # module-dir module version
  grep -Eq "^[[:space:]]*(require[[:space:]]+)?$2[[:space:]]+$3\$" "${ROOT}/toolchain/$1/go.mod" ||
    die "toolchain/$1/go.mod does not require $2 $3 (versions.env and go.mod disagree)"
}
check_pin kubernetes k8s.io/kubernetes "${KUBE_VERSION}"
check_pin etcd go.etcd.io/etcd/server/v3 "${ETCD_VERSION}"
check_pin kwok sigs.k8s.io/kwok "${KWOK_VERSION}"

GOVERSION="$("${GO}" env GOVERSION)"
# stamp content: what was built, with which Go and flags; a change of any of these rebuilds.
stamp_of() { printf '%s %s go=%s ldflags=%s\n' "$1" "$2" "${GOVERSION}" "$3"; }
up_to_date() { # name stamp
  [[ "${FORCE}" == 0 && -x "${BIN}/$1" && -f "${BIN}/.$1.stamp" && "$(cat "${BIN}/.$1.stamp")" == "$2" ]]
}

# build <module-dir> <ldflags> <name:package>...  (one `go build`, so shared packages compile once)
build() {
  local dir="$1" ldflags="$2"; shift 2
  local todo=() names=() spec name pkg
  for spec in "$@"; do
    name="${spec%%:*}"; pkg="${spec#*:}"
    if up_to_date "${name}" "$(stamp_of "${name}" "${pkg}" "${ldflags}")"; then
      log "${name}: up to date (${BIN}/${name})"
    else
      todo+=("${pkg}"); names+=("${name}")
    fi
  done
  [[ ${#todo[@]} -gt 0 ]] || return 0
  local t0=$SECONDS tmp i
  tmp="$(mktemp -d "${BIN}/.build.XXXXXX")"
  log "building ${names[*]} (toolchain/${dir}, go build -p ${JOBS}) ..."
  if [[ ${#todo[@]} -eq 1 ]]; then
    (cd "${ROOT}/toolchain/${dir}" && "${GO}" build "${GOFLAGS_BUILD[@]}" -ldflags "${ldflags}" -o "${tmp}/${names[0]}" "${todo[0]}") ||
      { rm -rf "${tmp}"; die "go build of ${names[*]} failed (see above)"; }
  else
    # -o <dir>/ writes each main package as <dir>/<last element of its path> (== name here)
    (cd "${ROOT}/toolchain/${dir}" && "${GO}" build "${GOFLAGS_BUILD[@]}" -ldflags "${ldflags}" -o "${tmp}/" "${todo[@]}") ||
      { rm -rf "${tmp}"; die "go build of ${names[*]} failed (see above)"; }
  fi
  for i in "${!names[@]}"; do
    [[ -x "${tmp}/${names[$i]}" ]] || { rm -rf "${tmp}"; die "go build produced no ${names[$i]}"; }
    mv -f "${tmp}/${names[$i]}" "${BIN}/${names[$i]}"
    stamp_of "${names[$i]}" "${todo[$i]}" "${ldflags}" >"${BIN}/.${names[$i]}.stamp"
  done
  rm -rf "${tmp}"
  log "built ${names[*]} in $((SECONDS - t0))s"
}

# --- etcd -------------------------------------------------------------------------------------
build etcd "-s -w" "etcd:go.etcd.io/etcd/server/v3"

# --- kwok -------------------------------------------------------------------------------------
# consts.Version defaults to the release already; KubeVersion only matters for kwokctl downloads.
build kwok "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=${KWOK_VERSION#v}" "kwok:sigs.k8s.io/kwok/cmd/kwok"

# --- Kubernetes -------------------------------------------------------------------------------
# Version ldflags are mandatory: without them /version reports v0.0.0-master and clients
# (pulumi-kubernetes among them) refuse the cluster. Same variables as hack/lib/version.sh sets,
# in both packages (component-base: servers; client-go: kubectl's client version).
# gitCommit is unknown from a module zip (the proxy's .info has no VCS origin), so it names the
# module version instead; buildDate is the module version's publication time from the proxy.
# `go list -m` only needs the module's .info (no source zip), so a run with cached binaries stays
# cheap even on an empty module cache.
BUILD_DATE="$(cd "${ROOT}/toolchain/kubernetes" && "${GO}" list -m -json k8s.io/kubernetes | sed -n 's/.*"Time": "\([^"]*\)".*/\1/p')" ||
  die "cannot resolve k8s.io/kubernetes@${KUBE_VERSION} through the Go module proxy"
BUILD_DATE="${BUILD_DATE:-1970-01-01T00:00:00Z}"
KMAJOR="${KUBE_VERSION#v}"; KMAJOR="${KMAJOR%%.*}"
KMINOR="${KUBE_VERSION#v*.}"; KMINOR="${KMINOR%%.*}"
KUBE_LDFLAGS="-s -w"
for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  KUBE_LDFLAGS+=" -X ${p}.gitVersion=${KUBE_VERSION} -X ${p}.gitMajor=${KMAJOR} -X ${p}.gitMinor=${KMINOR}"
  KUBE_LDFLAGS+=" -X ${p}.gitCommit=module-${KUBE_VERSION} -X ${p}.gitTreeState=clean -X ${p}.buildDate=${BUILD_DATE}"
done
build kubernetes "${KUBE_LDFLAGS}" \
  "kube-apiserver:k8s.io/kubernetes/cmd/kube-apiserver" \
  "kube-controller-manager:k8s.io/kubernetes/cmd/kube-controller-manager" \
  "kube-scheduler:k8s.io/kubernetes/cmd/kube-scheduler" \
  "kubectl:k8s.io/kubernetes/cmd/kubectl"

# --- smoke check ------------------------------------------------------------------------------
got="$("${BIN}/kube-apiserver" --version 2>&1 || true)"
[[ "${got}" == "Kubernetes ${KUBE_VERSION}" ]] || die "kube-apiserver --version says '${got}', expected 'Kubernetes ${KUBE_VERSION}'"
got="$("${BIN}/kubectl" version --client 2>&1 | head -1 || true)"
[[ "${got}" == *"${KUBE_VERSION}"* ]] || die "kubectl version --client says '${got}'"
got="$("${BIN}/etcd" --version 2>&1 | head -1 || true)"
[[ "${got}" == *"${ETCD_VERSION#v}"* ]] || die "etcd --version says '${got}'"
log "ok: ${BIN} (kube ${KUBE_VERSION}, etcd ${ETCD_VERSION}, kwok ${KWOK_VERSION})"
