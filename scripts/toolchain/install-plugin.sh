# Sourced by the provider build scripts (they define log and die).
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
  [[ -x "${cli}" ]] || die "Pulumi CLI not found at ${cli}: run scripts/toolchain/pulumi.sh first"
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
