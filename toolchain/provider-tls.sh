#!/usr/bin/env bash
# Builds the Pulumi TLS resource provider plugin (pulumi-resource-tls) from Go modules only (no
# get.pulumi.com, no GitHub) and installs it into the PULUMI_HOME the tests use.
#
#   toolchain/provider-tls/  wrapper module: upstream hashicorp/terraform-provider-tls served by the
#                            Pulumi Terraform bridge; our glue only (shim/, info/, cmd/). go.mod
#                            explains every version and replace.
# Steps (skipped when the stamp matches):
#   1. build cmd/pulumi-tfgen-tls (the bridge's schema generator over our info/ settings)
#   2. run it: `schema --out <tmp>` -> copy schema.json to cmd/pulumi-resource-tls/ (gitignored),
#      where the plugin //go:embed's it
#   3. build cmd/pulumi-resource-tls with -X .../info.Version=<TLS_PROVIDER_VERSION> (mandatory:
#      the plugin refuses to start without it, and the engine matches plugins by exact version)
#   4. `pulumi plugin install resource tls <ver> --file <bin>` with the CLI toolchain/pulumi.sh
#      builds (run that first)
#
# Output (CACHE = ${ISTIO_CA_CACHE:-$HOME/.cache/istio-ca}):
#   ${CACHE}/pulumi-resource-tls-v<TLS_PROVIDER_VERSION>/bin/{pulumi-resource-tls,pulumi-tfgen-tls}
#   ${CACHE}/pulumi-home-v<PULUMI_ENGINE_VERSION>/plugins/resource-tls-v<TLS_PROVIDER_VERSION>/  (PULUMI_HOME)
# bin/.pulumi-resource-tls.stamp records the inputs' hash, Go version and flags; a binary whose stamp
# matches and that reports the right version is not rebuilt, so a second run is a no-op.
#
# Usage: toolchain/provider-tls.sh [--force]
#   --force  rebuild even when the stamp matches
# Environment: ISTIO_CA_CACHE, GO (default: go), PULUMI_BUILD_JOBS (go build -p, default: nproc
# capped at 4).
set -euo pipefail

# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
: "${PULUMI_ENGINE_VERSION:?versions.env must set PULUMI_ENGINE_VERSION}"
: "${TLS_PROVIDER_VERSION:?versions.env must set TLS_PROVIDER_VERSION}"
: "${TLS_UPSTREAM_MODULE_VERSION:?versions.env must set TLS_UPSTREAM_MODULE_VERSION}"
: "${TLS_BRIDGE_VERSION:?versions.env must set TLS_BRIDGE_VERSION}"
: "${TLS_SDKV2_FORK_VERSION:?versions.env must set TLS_SDKV2_FORK_VERSION}"

CLI="${CLI_BIN}/pulumi"
TLS_BIN="${CACHE}/pulumi-resource-tls-v${TLS_PROVIDER_VERSION}/bin"
MOD_DIR="${ROOT}/toolchain/provider-tls"

FORCE=0
for arg in "$@"; do
  case "${arg}" in
    --force) FORCE=1 ;;
    *) die "unknown argument: ${arg} (usage: $0 [--force])" ;;
  esac
done

setup_go PULUMI_BUILD_JOBS

# --- Version consistency ------------------------------------------------------------------------
# go.mod must name exactly the versions versions.env does (requires and the SDK fork replace).
check_pin() { # module version
  grep -Eq "^[[:space:]]*(require[[:space:]]+)?$1[[:space:]]+$2([[:space:]]*//.*)?\$" "${MOD_DIR}/go.mod" ||
    die "toolchain/provider-tls/go.mod does not require $1 $2 (versions.env and go.mod disagree)"
}
check_pin github.com/hashicorp/terraform-provider-tls "${TLS_UPSTREAM_MODULE_VERSION}"
check_pin github.com/pulumi/pulumi-terraform-bridge/v3 "${TLS_BRIDGE_VERSION}"
grep -Eq "^[[:space:]]*(replace[[:space:]]+)?github.com/hashicorp/terraform-plugin-sdk/v2[[:space:]]+=>[[:space:]]+github.com/pulumi/terraform-plugin-sdk/v2[[:space:]]+${TLS_SDKV2_FORK_VERSION}[[:space:]]*\$" \
  "${MOD_DIR}/go.mod" ||
  die "toolchain/provider-tls/go.mod does not replace terraform-plugin-sdk/v2 with the Pulumi fork ${TLS_SDKV2_FORK_VERSION}"
check_npm_version @pulumi/tls "${TLS_PROVIDER_VERSION}" TLS_PROVIDER_VERSION

# --- Build ----------------------------------------------------------------------------------------
# Static, trimmed binaries, as in pulumi.sh (CGO off, -s -w).
LDFLAGS="-s -w -X istio-ca/toolchain/provider-tls/info.Version=${TLS_PROVIDER_VERSION}"
PLUGIN="${TLS_BIN}/pulumi-resource-tls"
TFGEN="${TLS_BIN}/pulumi-tfgen-tls"
STAMPFILE="${TLS_BIN}/.pulumi-resource-tls.stamp"

inputs_hash() { # our sources + go.mod/go.sum + embedded JSON, but not the generated schema
  (cd "${MOD_DIR}" && find . -type f \( -name '*.go' -o -name 'go.mod' -o -name 'go.sum' -o -name '*.json' \) \
    ! -path './cmd/pulumi-resource-tls/schema.json' | LC_ALL=C sort | xargs sha256sum) | sha256sum | cut -c1-16
}
STAMP="$(printf 'pulumi-resource-tls inputs=%s go=%s ldflags=%s\n' \
  "$(inputs_hash)" "$("${GO}" env GOVERSION)" "${LDFLAGS}")"
version_ok() { [[ "$("$1" -version 2>/dev/null)" == "${TLS_PROVIDER_VERSION}" ]]; }

if [[ "${FORCE}" == 0 && -x "${PLUGIN}" && -f "${STAMPFILE}" && "$(cat "${STAMPFILE}")" == "${STAMP}" ]] &&
  version_ok "${PLUGIN}"; then
  log "pulumi-resource-tls ${TLS_PROVIDER_VERSION}: up to date (${PLUGIN})"
else
  t0=$SECONDS
  mkdir -p "${TLS_BIN}"
  log "pulumi-resource-tls ${TLS_PROVIDER_VERSION}: building the schema generator (go build -p ${JOBS}; cold: several minutes)..."
  (cd "${MOD_DIR}" &&
    "${GO}" build "${GOFLAGS_BUILD[@]}" -ldflags "${LDFLAGS}" -o "${TFGEN}.tmp" ./cmd/pulumi-tfgen-tls) ||
    die "go build of the schema generator failed (toolchain/provider-tls/cmd/pulumi-tfgen-tls)"
  mv -f "${TFGEN}.tmp" "${TFGEN}"

  log "pulumi-resource-tls ${TLS_PROVIDER_VERSION}: generating the schema..."
  GEN="$(mktemp -d "${TMPDIR:-/tmp}/provider-tls-gen.XXXXXX")"
  # tfgen also looks for the upstream docs (in ./provider or via git); it finds none here, which
  # only leaves descriptions empty. Its log is shown on failure only. Run in GEN to keep the
  # repository clean.
  if ! (cd "${GEN}" && "${TFGEN}" schema --out "${GEN}/out" --skip-examples >"${GEN}/tfgen.log" 2>&1); then
    cat "${GEN}/tfgen.log" >&2
    die "pulumi-tfgen-tls schema failed (log above)"
  fi
  [[ -s "${GEN}/out/schema.json" ]] || die "pulumi-tfgen-tls wrote no schema.json (${GEN}/out)"
  grep -q '"tls:index/selfSignedCert:SelfSignedCert"' "${GEN}/out/schema.json" ||
    die "generated schema lacks tls:index/selfSignedCert:SelfSignedCert (${GEN}/out/schema.json)"
  cp "${GEN}/out/schema.json" "${MOD_DIR}/cmd/pulumi-resource-tls/schema.json.tmp"
  mv -f "${MOD_DIR}/cmd/pulumi-resource-tls/schema.json.tmp" "${MOD_DIR}/cmd/pulumi-resource-tls/schema.json"
  rm -rf "${GEN}"

  log "pulumi-resource-tls ${TLS_PROVIDER_VERSION}: building the plugin..."
  (cd "${MOD_DIR}" &&
    "${GO}" build "${GOFLAGS_BUILD[@]}" -ldflags "${LDFLAGS}" -o "${PLUGIN}.tmp" ./cmd/pulumi-resource-tls) ||
    die "go build of the plugin failed (toolchain/provider-tls/cmd/pulumi-resource-tls)"
  mv -f "${PLUGIN}.tmp" "${PLUGIN}"
  version_ok "${PLUGIN}" ||
    die "built plugin reports '$("${PLUGIN}" -version 2>&1 || true)', want ${TLS_PROVIDER_VERSION}"
  printf '%s' "${STAMP}" >"${STAMPFILE}"
  log "pulumi-resource-tls ${TLS_PROVIDER_VERSION}: built in $((SECONDS - t0))s"
fi

# --- Install the plugin into the tests' PULUMI_HOME ---------------------------------------------
install_plugin tls "${TLS_PROVIDER_VERSION}" "${PLUGIN}" "${CLI}" "${PHOME}"

log "done: resource-tls ${TLS_PROVIDER_VERSION} (${PLUGIN}); env: toolchain/pulumi.sh --print-env"
