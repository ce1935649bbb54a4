#!/usr/bin/env bash
# Builds the `command` resource provider plugin the project's @pulumi/command 1.2.1 needs and
# installs it into the PULUMI_HOME the tests use.
#
# The plugin is a clean-room STAND-IN (toolchain/provider-command-standin, README.md there): the
# upstream pulumi-command provider's source is not served by the Go module proxy, so this is our
# own implementation of the subset of command:local:Command the project uses, on the Pulumi Go SDK
# only. It is installed as resource-command v<COMMAND_PROVIDER_VERSION> because the engine loads
# the plugin whose version equals the npm package's.
#
# Output (CACHE = ${ISTIO_CA_CACHE:-$HOME/.cache/istio-ca}):
#   ${CACHE}/pulumi-resource-command-standin-v<COMMAND_PROVIDER_VERSION>-sdk-<COMMAND_STANDIN_SDK_VERSION>/bin/pulumi-resource-command
#   ${CACHE}/pulumi-home-v<PULUMI_ENGINE_VERSION>/plugins/resource-command-v<COMMAND_PROVIDER_VERSION>/  (PULUMI_HOME)
# bin/.pulumi-resource-command.stamp records the inputs' hash, Go version and flags; a binary whose
# stamp matches and that reports the right version is not rebuilt, so a second run is a no-op.
# Installing needs the Pulumi CLI that toolchain/pulumi.sh builds (run that first).
#
# Usage: toolchain/provider-command.sh [--force]
#   --force  rebuild even when the stamp matches
# Environment: ISTIO_CA_CACHE, GO (default: go), PULUMI_BUILD_JOBS (go build -p, default: nproc
# capped at 4).
set -euo pipefail

# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
: "${PULUMI_ENGINE_VERSION:?versions.env must set PULUMI_ENGINE_VERSION}"
: "${COMMAND_PROVIDER_VERSION:?versions.env must set COMMAND_PROVIDER_VERSION}"
: "${COMMAND_STANDIN_SDK_VERSION:?versions.env must set COMMAND_STANDIN_SDK_VERSION}"

CLI="${CLI_BIN}/pulumi"
# Per Go SDK too: the stand-in is rebuilt when its SDK changes, and so gets its own directory.
CMD_BIN="${CACHE}/pulumi-resource-command-standin-v${COMMAND_PROVIDER_VERSION}-sdk-${COMMAND_STANDIN_SDK_VERSION}/bin"
MOD_DIR="${ROOT}/toolchain/provider-command-standin"

FORCE=0
for arg in "$@"; do
  case "${arg}" in
    --force) FORCE=1 ;;
    *) die "unknown argument: ${arg} (usage: $0 [--force])" ;;
  esac
done

setup_go PULUMI_BUILD_JOBS

# --- Version consistency ------------------------------------------------------------------------
grep -Eq "^[[:space:]]*(require[[:space:]]+)?github.com/pulumi/pulumi/sdk/v3[[:space:]]+${COMMAND_STANDIN_SDK_VERSION}([[:space:]]*//.*)?\$" \
  "${MOD_DIR}/go.mod" ||
  die "toolchain/provider-command-standin/go.mod does not require github.com/pulumi/pulumi/sdk/v3 ${COMMAND_STANDIN_SDK_VERSION} (versions.env and go.mod disagree)"
check_npm_version @pulumi/command "${COMMAND_PROVIDER_VERSION}" COMMAND_PROVIDER_VERSION

# --- Build ----------------------------------------------------------------------------------------
# Static, trimmed binary, as in pulumi.sh (CGO off, -s -w).
LDFLAGS="-s -w -X main.Version=${COMMAND_PROVIDER_VERSION}"
PLUGIN="${CMD_BIN}/pulumi-resource-command"
STAMPFILE="${CMD_BIN}/.pulumi-resource-command.stamp"

inputs_hash() { # our sources (tests excluded) + go.mod/go.sum
  (cd "${MOD_DIR}" && find . -type f \( -name '*.go' -o -name 'go.mod' -o -name 'go.sum' \) ! -name '*_test.go' |
    LC_ALL=C sort | xargs sha256sum) | sha256sum | cut -c1-16
}
STAMP="$(printf 'pulumi-resource-command-standin inputs=%s go=%s ldflags=%s\n' \
  "$(inputs_hash)" "$("${GO}" env GOVERSION)" "${LDFLAGS}")"
# `-version` prints "<version> (istio-ca clean-room stand-in, ...)".
version_ok() { [[ "$("$1" -version 2>/dev/null | cut -d' ' -f1)" == "${COMMAND_PROVIDER_VERSION}" ]]; }

if [[ "${FORCE}" == 0 && -x "${PLUGIN}" && -f "${STAMPFILE}" && "$(cat "${STAMPFILE}")" == "${STAMP}" ]] &&
  version_ok "${PLUGIN}"; then
  log "pulumi-resource-command ${COMMAND_PROVIDER_VERSION} (stand-in): up to date (${PLUGIN})"
else
  t0=$SECONDS
  mkdir -p "${CMD_BIN}"
  log "pulumi-resource-command ${COMMAND_PROVIDER_VERSION} (stand-in): building (go build -p ${JOBS}; cold: 1-3 minutes)..."
  (cd "${MOD_DIR}" &&
    "${GO}" build "${GOFLAGS_BUILD[@]}" -ldflags "${LDFLAGS}" -o "${PLUGIN}.tmp" .) ||
    die "go build of the command provider stand-in failed (toolchain/provider-command-standin)"
  mv -f "${PLUGIN}.tmp" "${PLUGIN}"
  version_ok "${PLUGIN}" ||
    die "built plugin reports '$("${PLUGIN}" -version 2>&1 || true)', want ${COMMAND_PROVIDER_VERSION}"
  printf '%s' "${STAMP}" >"${STAMPFILE}"
  log "pulumi-resource-command ${COMMAND_PROVIDER_VERSION} (stand-in): built in $((SECONDS - t0))s"
fi

# --- Install the plugin into the tests' PULUMI_HOME ---------------------------------------------
install_plugin command "${COMMAND_PROVIDER_VERSION}" "${PLUGIN}" "${CLI}" "${PHOME}" " (stand-in)"

log "done: resource-command ${COMMAND_PROVIDER_VERSION} (stand-in, ${PLUGIN}); env: toolchain/pulumi.sh --print-env"
