# Sourced by every build script in toolchain/ (which set -euo pipefail first): timed
# progress lines, a failure trap, the repo root, the pinned versions, the cache directory, the Go
# build settings, and the plugin-install steps shared by the provider scripts.

START=$SECONDS
TOOLCHAIN_SCRIPT="$(basename "$0")"
log() { printf '[%s %4ds] %s\n' "${TOOLCHAIN_SCRIPT}" "$((SECONDS - START))" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
trap 'rc=$?; log "FAILED (exit ${rc}) at line ${LINENO}: ${BASH_COMMAND}"; exit ${rc}' ERR

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=versions.env
source "${ROOT}/toolchain/versions.env"
CACHE="${ISTIO_CA_CACHE:-${HOME}/.cache/istio-ca}"
GO="${GO:-go}"
# The engine and the PULUMI_HOME its plugins are installed into, both per engine version: a branch
# on another engine (or a stand-in built on another Go SDK) then has its own directories instead of
# rebuilding over this one's. Directories of older versions are not used any more and may be removed.
CLI_BIN="${CACHE}/pulumi-v${PULUMI_ENGINE_VERSION}/bin"
PHOME="${CACHE}/pulumi-home-v${PULUMI_ENGINE_VERSION}"

# setup_go JOBS_VARIABLE: checks for Go and sets JOBS (go build -p: the variable's value, else nproc
# capped at 4, since a large link needs 2-4 GiB) and GOFLAGS_BUILD. Binaries are static and trimmed.
setup_go() {
  local override="${!1:-}"
  command -v "${GO}" >/dev/null || die "Go toolchain not found (set GO=/path/to/go)"
  JOBS="${override:-$(nproc)}"
  if [[ -z "${override}" && "${JOBS}" -gt 4 ]]; then JOBS=4; fi
  export CGO_ENABLED=0
  GOFLAGS_BUILD=(-p "${JOBS}" -trimpath -mod=readonly -buildvcs=false)
}

#
# install_plugin NAME VERSION BINARY CLI PULUMI_HOME [NOTE]
# Installs BINARY as resource plugin NAME at VERSION into PULUMI_HOME with CLI, unless the same
# binary is there already. The engine picks a plugin whose version equals the one the SDK asks
# for (the npm package's pulumi.version), looking in $PULUMI_HOME/plugins/resource-NAME-vVERSION/.
install_plugin() {
  local name="$1" version="$2" binary="$3" cli="$4" phome="$5" note="${6:-}"
  local dir="${phome}/plugins/resource-${name}-v${version}"
  if [[ -x "${dir}/pulumi-resource-${name}" ]] && cmp -s "${dir}/pulumi-resource-${name}" "${binary}"; then
    log "plugin resource-${name} v${version}${note}: installed (${dir})"
    return 0
  fi
  [[ -x "${cli}" ]] || die "Pulumi CLI not found at ${cli}: run toolchain/pulumi.sh first"
  log "plugin resource-${name} v${version}${note}: installing into ${phome}..."
  mkdir -p "${phome}"
  PULUMI_HOME="${phome}" PULUMI_SKIP_UPDATE_CHECK=true \
    "${cli}" plugin install resource "${name}" "${version}" --file "${binary}" --reinstall --non-interactive >&2 ||
    die "pulumi plugin install of resource-${name} failed"
  cmp -s "${dir}/pulumi-resource-${name}" "${binary}" || die "plugin not found at ${dir} after install"
}

# check_npm_version PACKAGE VERSION VARIABLE
# The engine loads the plugin whose version equals the npm package's (package-lock.json): catch a
# drift between versions.env and the lock file before building anything.
check_npm_version() {
  local package="$1" version="$2" variable="$3" npm_ver
  command -v node >/dev/null && [[ -f "${ROOT}/package-lock.json" ]] || return 0
  npm_ver="$(node -e 'const l=require(process.argv[1]);const p=(l.packages||{})["node_modules/"+process.argv[2]];process.stdout.write(p?p.version:"")' \
    "${ROOT}/package-lock.json" "${package}")"
  [[ -z "${npm_ver}" || "${npm_ver}" == "${version}" ]] ||
    die "package-lock.json has ${package} ${npm_ver} but ${variable}=${version}: the engine would not find the plugin"
}
