#!/usr/bin/env bash
# Builds the Pulumi CLI (engine) and the Kubernetes resource provider plugin from Go modules only
# (no get.pulumi.com, no GitHub), then installs the plugin into the PULUMI_HOME the tests use.
#
#   toolchain/pulumi-cli/           wrapper module: github.com/pulumi/pulumi/pkg/v3/cmd/pulumi
#   toolchain/provider-kubernetes/  wrapper module: pulumi-resource-kubernetes (+ ./genembed)
# Both pin every dependency with go.mod + go.sum; versions come from toolchain/versions.env.
#
# No Node.js language host is built: its module is not served by the Go proxy here, and none is
# needed, because the project runs its Pulumi program through the Automation API as an *inline*
# program. The Node process then serves the language runtime itself and passes
# `--client=127.0.0.1:PORT` to the CLI, whose engine dials that address instead of loading the
# `pulumi-language-nodejs` plugin (pkg/v3 engine/deployment.go: runtime "client").
#
# Output (CACHE = ${ISTIO_CA_CACHE:-$HOME/.cache/istio-ca}):
#   ${CACHE}/pulumi-v<PULUMI_ENGINE_VERSION>/bin/pulumi
#   ${CACHE}/pulumi-resource-kubernetes-v<KUBERNETES_PROVIDER_VERSION>/bin/pulumi-resource-kubernetes
#   ${CACHE}/pulumi-home-v<PULUMI_ENGINE_VERSION>/plugins/resource-kubernetes-v<KUBERNETES_PROVIDER_VERSION>/  (PULUMI_HOME)
# Each binary has a stamp file (bin/.<name>.stamp: inputs' hash, Go version, flags); a binary whose
# stamp matches and that reports the right version is skipped, so a second run is a no-op.
#
# Usage: toolchain/pulumi.sh [--print-env] [--force]
#   --print-env  print the environment the tests need (export lines) and exit; nothing is built
#   --force      rebuild even when the stamps match
# Environment: ISTIO_CA_CACHE, GO (default: go), PULUMI_BUILD_JOBS (go build -p, default: nproc
# capped at 4).
set -euo pipefail

# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
: "${PULUMI_ENGINE_VERSION:?versions.env must set PULUMI_ENGINE_VERSION}"
: "${KUBERNETES_PROVIDER_VERSION:?versions.env must set KUBERNETES_PROVIDER_VERSION}"
: "${KUBERNETES_PROVIDER_MODULE_VERSION:?versions.env must set KUBERNETES_PROVIDER_MODULE_VERSION}"

K8S_BIN="${CACHE}/pulumi-resource-kubernetes-v${KUBERNETES_PROVIDER_VERSION}/bin"

print_env() {
  cat <<EOF
export PATH="${CLI_BIN}:\${PATH}"
export PULUMI_HOME="${PHOME}"
export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
export PULUMI_SKIP_UPDATE_CHECK=true
export PULUMI_IGNORE_AMBIENT_PLUGINS=true
EOF
}

FORCE=0
for arg in "$@"; do
  case "${arg}" in
    --print-env) print_env; exit 0 ;;
    --force) FORCE=1 ;;
    *) die "unknown argument: ${arg} (usage: $0 [--print-env] [--force])" ;;
  esac
done

command -v node >/dev/null || die "node not found (used to read the provider's schema version)"
setup_go PULUMI_BUILD_JOBS

# Static, trimmed binaries, as Pulumi's release builds (CGO off, -s -w, osusergo/grpcnotrace tags).
CLI_TAGS="osusergo,grpcnotrace"

# The wrapper go.mod must require exactly the version versions.env names.
check_pin() { # module-dir module version
  grep -Eq "^[[:space:]]*(require[[:space:]]+)?$2[[:space:]]+$3([[:space:]]*//.*)?\$" \
    "${ROOT}/toolchain/$1/go.mod" ||
    die "toolchain/$1/go.mod does not require $2 $3 (versions.env and go.mod disagree)"
}
check_pin pulumi-cli github.com/pulumi/pulumi/pkg/v3 "v${PULUMI_ENGINE_VERSION}"
check_pin pulumi-cli github.com/pulumi/pulumi/sdk/v3 "v${PULUMI_ENGINE_VERSION}"
check_pin provider-kubernetes github.com/pulumi/pulumi-kubernetes/provider/v4 \
  "${KUBERNETES_PROVIDER_MODULE_VERSION}"

GOVERSION="$("${GO}" env GOVERSION)"
inputs_hash() { # module-dir: hash of the wrapper module's files (not its generated embeds)
  (cd "${ROOT}/toolchain/$1" && find . -type f \( -name '*.go' -o -name 'go.mod' -o -name 'go.sum' \) |
    LC_ALL=C sort | xargs sha256sum) | sha256sum | cut -c1-16
}
stamp_of() { # name module-dir tags ldflags
  printf '%s inputs=%s go=%s tags=%s ldflags=%s\n' "$1" "$(inputs_hash "$2")" "${GOVERSION}" "$3" "$4"
}
up_to_date() { # binary-path stamp
  local bin="$1" stampfile
  stampfile="$(dirname "$1")/.$(basename "$1").stamp"
  [[ "${FORCE}" == 0 && -x "${bin}" && -f "${stampfile}" && "$(cat "${stampfile}")" == "$2" ]]
}
write_stamp() { printf '%s' "$2" >"$(dirname "$1")/.$(basename "$1").stamp"; }

# --- Pulumi CLI ---------------------------------------------------------------------------------
# Without the version ldflag the CLI says v0.0.0-dev... and the Automation API cannot parse it.
CLI_LDFLAGS="-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v${PULUMI_ENGINE_VERSION}"
cli_version_ok() { [[ "$("$1" version 2>/dev/null)" == "v${PULUMI_ENGINE_VERSION}" ]]; }

CLI_STAMP="$(stamp_of pulumi pulumi-cli "${CLI_TAGS}" "${CLI_LDFLAGS}")"
if up_to_date "${CLI_BIN}/pulumi" "${CLI_STAMP}" && cli_version_ok "${CLI_BIN}/pulumi"; then
  log "pulumi v${PULUMI_ENGINE_VERSION}: up to date (${CLI_BIN}/pulumi)"
else
  log "pulumi v${PULUMI_ENGINE_VERSION}: building (go build -p ${JOBS}; cold: several minutes)..."
  t0=$SECONDS
  mkdir -p "${CLI_BIN}"
  (cd "${ROOT}/toolchain/pulumi-cli" &&
    "${GO}" build "${GOFLAGS_BUILD[@]}" -tags "${CLI_TAGS}" -ldflags "${CLI_LDFLAGS}" \
      -o "${CLI_BIN}/pulumi.tmp" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi) ||
    die "go build of the Pulumi CLI failed (toolchain/pulumi-cli)"
  mv -f "${CLI_BIN}/pulumi.tmp" "${CLI_BIN}/pulumi"
  cli_version_ok "${CLI_BIN}/pulumi" ||
    die "built pulumi reports '$("${CLI_BIN}/pulumi" version 2>&1 || true)', want v${PULUMI_ENGINE_VERSION}"
  write_stamp "${CLI_BIN}/pulumi" "${CLI_STAMP}"
  log "pulumi v${PULUMI_ENGINE_VERSION}: built in $((SECONDS - t0))s"
fi

# --- Kubernetes provider plugin -----------------------------------------------------------------
K8S_VERSION_PKG="github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version.Version"
K8S_LDFLAGS="-s -w -X ${K8S_VERSION_PKG}=${KUBERNETES_PROVIDER_VERSION}"
K8S_DIR="${ROOT}/toolchain/provider-kubernetes"
# The plugin has no --version flag, and -trimpath keeps -ldflags out of its build info: ask the
# plugin itself for its schema (runs it as the engine would, ~2 s) and check the version stamped
# in by genembed. The -X flag is part of the stamp.
k8s_version_ok() {
  local v
  v="$(PULUMI_HOME="${PHOME}" PULUMI_SKIP_UPDATE_CHECK=true "${CLI_BIN}/pulumi" package get-schema "$1" 2>/dev/null |
    node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{try{console.log(JSON.parse(s).version)}catch(e){}})')" || true
  [[ "${v}" == "${KUBERNETES_PROVIDER_VERSION}" ]]
}

K8S_STAMP="$(stamp_of pulumi-resource-kubernetes provider-kubernetes "" "${K8S_LDFLAGS}")"
if up_to_date "${K8S_BIN}/pulumi-resource-kubernetes" "${K8S_STAMP}" &&
  k8s_version_ok "${K8S_BIN}/pulumi-resource-kubernetes"; then
  log "pulumi-resource-kubernetes ${KUBERNETES_PROVIDER_VERSION}: up to date (${K8S_BIN})"
else
  t0=$SECONDS
  mkdir -p "${K8S_BIN}"
  # The provider's main package embeds schema-embed.json and terraform-mapping-embed.json, which
  # upstream generates (not in the module zip): make them from the zip's schema.json and
  # terraform-mapping.json, stamping the version into the schema (toolchain/provider-kubernetes/main.go).
  # (`go mod download -json` fetches the module if needed and prints its directory; `go list -m`
  # would print nothing on a machine whose module cache does not have it yet.)
  MODDIR="$(cd "${K8S_DIR}" && "${GO}" mod download -json github.com/pulumi/pulumi-kubernetes/provider/v4 |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')" ||
    die "cannot download the pulumi-kubernetes provider module"
  [[ -n "${MODDIR}" && -f "${MODDIR}/cmd/pulumi-resource-kubernetes/schema.json" ]] ||
    die "schema.json not found in the provider module (${MODDIR:-<empty>})"
  log "pulumi-resource-kubernetes ${KUBERNETES_PROVIDER_VERSION}: generating embedded schema..."
  (cd "${K8S_DIR}" &&
    "${GO}" run "${GOFLAGS_BUILD[@]}" ./genembed -version "${KUBERNETES_PROVIDER_VERSION}" \
      -src "${MODDIR}/cmd/pulumi-resource-kubernetes" -out .) ||
    die "generating the provider's embedded schema failed (toolchain/provider-kubernetes/genembed)"
  log "pulumi-resource-kubernetes ${KUBERNETES_PROVIDER_VERSION}: building (cold: several minutes)..."
  (cd "${K8S_DIR}" &&
    "${GO}" build "${GOFLAGS_BUILD[@]}" -ldflags "${K8S_LDFLAGS}" \
      -o "${K8S_BIN}/pulumi-resource-kubernetes.tmp" .) ||
    die "go build of the Kubernetes provider failed (toolchain/provider-kubernetes)"
  mv -f "${K8S_BIN}/pulumi-resource-kubernetes.tmp" "${K8S_BIN}/pulumi-resource-kubernetes"
  k8s_version_ok "${K8S_BIN}/pulumi-resource-kubernetes" ||
    die "built provider does not serve a schema with version ${KUBERNETES_PROVIDER_VERSION}"
  write_stamp "${K8S_BIN}/pulumi-resource-kubernetes" "${K8S_STAMP}"
  log "pulumi-resource-kubernetes ${KUBERNETES_PROVIDER_VERSION}: built in $((SECONDS - t0))s"
fi

# --- Install the plugin into the tests' PULUMI_HOME ---------------------------------------------
install_plugin kubernetes "${KUBERNETES_PROVIDER_VERSION}" "${K8S_BIN}/pulumi-resource-kubernetes" "${CLI_BIN}/pulumi" "${PHOME}"

log "done: pulumi $("${CLI_BIN}/pulumi" version), resource-kubernetes ${KUBERNETES_PROVIDER_VERSION}; env: $0 --print-env"
