#!/usr/bin/env bash
# Build (once) and cache a real kube-apiserver v1.20.2 for end-to-end tests, and on request
# the kubeadm of the same tree (scripts/kubeadm.sh), an independent reader of what authsvc writes.
#
# Prints the path of each cached binary asked for on stdout, one a line, and nothing else;
# progress and errors go to stderr. The binaries are built offline from Debian bookworm's
# `kubernetes` source package (the complete upstream v1.20.2 tree with vendor/),
# in GOPATH mode with Debian's golang-1.19-go. See shared/testing/kube-apiserver.md.
# Asking for both at once (`kube-apiserver.sh kube-apiserver kubeadm`, as scripts/test.sh does)
# fetches and unpacks the source once for both.
#
# Cache layout:
#   ${AUTHSVC_KUBE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/authsvc/kube-apiserver}/<debian-version>/
#     kube-apiserver   the binary (written atomically)
#     kube-apiserver.recipe  BUILD_RECIPE it was built with (stale -> rebuild)
#     kubeadm, kubeadm.recipe  the same for kubeadm, when asked for
#     build.log        log of the last build (apt, dpkg-source, make, go)
#     gocache/         Go build cache, kept so that a rebuild is faster
#     build/           temporary build tree, removed after a successful build (a fixed
#                      path: Go's build cache only hits when package paths are unchanged)
#     .lock            flock(1) lock so that concurrent runs don't both build
set -euo pipefail

readonly DEB_SRC_PACKAGE="kubernetes"
readonly DEB_VERSION="1.20.5+really1.20.2-1.1+deb12u1"
readonly KUBE_GIT_VERSION="v1.20.2"
readonly KUBE_GIT_MAJOR="1"
readonly KUBE_GIT_MINOR="20"
readonly GO_BIN="/usr/lib/go-1.19/bin/go"
# Bump when the way the binary is built changes, so that cached binaries are rebuilt.
readonly BUILD_RECIPE="2"
readonly DEB_SRC_FILE="/etc/apt/sources.list.d/authsvc-deb-src.sources"
readonly DEB_SRC_LIST_FILE="/etc/apt/sources.list.d/authsvc-deb-src.list"
readonly APT_LOCK_WAIT_SECONDS=600
readonly BUILD_LOCK_WAIT_SECONDS=3600

prog="$(basename "$0")"

usage() {
    cat <<EOF
Usage: $prog [--print-version | --help] [BINARY...]

Print the path of a kube-apiserver ${KUBE_GIT_VERSION} binary, building it first if it
is not cached yet (about 6 minutes on 2 cores, ~1.5 GB of disk). BINARY is
kube-apiserver (the default) or kubeadm, or both: one path a line, in that order;
kubeadm adds about a minute once kube-apiserver's Go build cache is there.

The binary is built from Debian bookworm's '${DEB_SRC_PACKAGE}' source package,
version ${DEB_VERSION}, with golang-1.19-go in GOPATH mode,
and cached under:
  \${AUTHSVC_KUBE_CACHE:-\${XDG_CACHE_HOME:-\$HOME/.cache}/authsvc/kube-apiserver}/${DEB_VERSION}/

When run as root, missing build tools (dpkg-dev, golang-1.19-go, rsync, make,
etcd-server) are installed with apt-get, and a deb-src entry for bookworm is added
in ${DEB_SRC_FILE} if apt has none.

Options:
  --print-version  print the Debian source package version this script builds
  --help           show this help

Environment:
  AUTHSVC_KUBE_CACHE  cache root (default: \${XDG_CACHE_HOME:-\$HOME/.cache}/authsvc/kube-apiserver)
EOF
}

log() { printf '%s: %s\n' "$prog" "$*" >&2; }

die() {
    printf '%s: error: %s\n' "$prog" "$*" >&2
    exit 1
}

components=()
for arg in "$@"; do
    case "$arg" in
        --print-version)
            printf '%s\n' "$DEB_VERSION"
            exit 0
            ;;
        -h | --help)
            usage
            exit 0
            ;;
        kube-apiserver | kubeadm) components+=("$arg") ;;
        *)
            usage >&2
            die "unknown argument: $arg"
            ;;
    esac
done
((${#components[@]})) || components=(kube-apiserver)

cache_root="${AUTHSVC_KUBE_CACHE:-${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/authsvc/kube-apiserver}"
cache_dir="${cache_root}/${DEB_VERSION}"
build_log="${cache_dir}/build.log"

# reported_version NAME BINARY: what the binary says its version is, in the form it says it.
reported_version() {
    case "$1" in
        kube-apiserver) "$2" --version 2>/dev/null ;;
        kubeadm) "$2" version -o short 2>/dev/null ;;
    esac
}

expected_version() {
    case "$1" in
        kube-apiserver) printf 'Kubernetes %s' "$KUBE_GIT_VERSION" ;;
        kubeadm) printf '%s' "$KUBE_GIT_VERSION" ;;
    esac
}

# True if the binary NAME exists, is executable, was built by this recipe and reports the
# version we build.
cached_binary_ok() {
    local binary="${cache_dir}/$1"
    [[ -f "$binary" && -x "$binary" ]] || return 1
    [[ "$(cat "${binary}.recipe" 2>/dev/null)" == "$BUILD_RECIPE" ]] || return 1
    local out
    out="$(reported_version "$1" "$binary")" || return 1
    [[ "$out" == "$(expected_version "$1")" ]]
}

# Print the paths asked for and exit, if every one of them is cached.
print_if_all_cached() {
    local name
    for name in "${components[@]}"; do
        cached_binary_ok "$name" || return 0
    done
    for name in "${components[@]}"; do
        printf '%s\n' "${cache_dir}/${name}"
    done
    exit 0
}

print_if_all_cached

mkdir -p "$cache_dir" || die "cannot create cache directory $cache_dir"

# --- Lock: only one build per cache dir at a time ---------------------------
exec 9>"${cache_dir}/.lock" || die "cannot open lock file ${cache_dir}/.lock"
if ! flock -n 9; then
    log "another run is building in $cache_dir; waiting for it (up to ${BUILD_LOCK_WAIT_SECONDS}s)"
    flock -w "$BUILD_LOCK_WAIT_SECONDS" 9 || die "timed out waiting for the lock ${cache_dir}/.lock"
fi
# The other run may have finished the build while we waited.
print_if_all_cached
to_build=()
for name in "${components[@]}"; do
    cached_binary_ok "$name" && continue
    to_build+=("$name")
    if [[ -e "${cache_dir}/${name}" ]]; then
        log "cached ${cache_dir}/${name} is stale (other build recipe or version); rebuilding"
        rm -f "${cache_dir:?}/${name}" "${cache_dir}/${name}.recipe"
    fi
done

: >"$build_log"
current_step=""

fail_step() {
    local rc="$1"
    {
        printf '%s: error: step "%s" failed (exit %s); full log: %s\n' "$prog" "$current_step" "$rc" "$build_log"
        printf '%s: last lines of the log:\n' "$prog"
        tail -n 40 "$build_log" | sed 's/^/    /'
    } >&2
    exit 1
}

# run_step NAME CMD...: run CMD in a subshell with all its output appended to the
# build log. Note: bash ignores `set -e` inside CMD here (it runs in a `||` context),
# so the step functions below check each command themselves.
run_step() {
    current_step="$1"
    shift
    log "${current_step} (log: ${build_log})"
    printf '\n===== %s: %s =====\n$ %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$current_step" "$*" >>"$build_log"
    local rc=0
    ("$@") >>"$build_log" 2>&1 </dev/null || rc=$?
    if ((rc != 0)); then
        fail_step "$rc"
    fi
}

# apt_get ARGS...: apt-get that waits (up to APT_LOCK_WAIT_SECONDS) for an apt/dpkg
# lock held by another process (e.g. a background apt-get install) instead of failing.
apt_get() {
    local deadline=$((SECONDS + APT_LOCK_WAIT_SECONDS))
    local start_line rc
    while :; do
        start_line=$(($(wc -l <"$build_log") + 1))
        rc=0
        DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=60 "$@" || rc=$?
        if ((rc == 0)); then
            return 0
        fi
        if tail -n "+${start_line}" "$build_log" |
            grep -qiE 'could not get lock|unable to lock|unable to acquire the dpkg frontend lock|is another process using it'; then
            if ((SECONDS < deadline)); then
                echo "apt/dpkg lock is held by another process; retrying in 10s"
                sleep 10
                continue
            fi
            echo "gave up waiting ${APT_LOCK_WAIT_SECONDS}s for the apt/dpkg lock"
        fi
        return "$rc"
    done
}

# --- Prerequisites -------------------------------------------------------------
is_root() { [[ "$(id -u)" == "0" ]]; }

missing_pkgs=()
command -v dpkg-source >/dev/null 2>&1 || missing_pkgs+=(dpkg-dev)
[[ -x "$GO_BIN" ]] || missing_pkgs+=(golang-1.19-go)
command -v rsync >/dev/null 2>&1 || missing_pkgs+=(rsync)
command -v make >/dev/null 2>&1 || missing_pkgs+=(make)
command -v xz >/dev/null 2>&1 || missing_pkgs+=(xz-utils)
command -v patch >/dev/null 2>&1 || missing_pkgs+=(patch)
etcd_missing=0
[[ -x /usr/bin/etcd ]] || etcd_missing=1

have_source() {
    apt-cache showsrc "$DEB_SRC_PACKAGE" 2>/dev/null | grep -qxF "Version: ${DEB_VERSION}"
}

# Write deb-src entries mirroring the machine's bookworm deb entries.
add_deb_src_entries() {
    local sources_files=() list_files=()
    local f
    for f in /etc/apt/sources.list.d/*.sources; do
        [[ -f "$f" && "$f" != "$DEB_SRC_FILE" ]] && sources_files+=("$f")
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [[ -f "$f" && "$f" != "$DEB_SRC_LIST_FILE" ]] && list_files+=("$f")
    done

    local deb822="" oneline=""
    if ((${#sources_files[@]})); then
        # deb822 stanzas (paragraphs) with Types including "deb" and a bookworm suite,
        # copied verbatim except for the Types line.
        deb822="$(awk '
            BEGIN { RS = ""; }
            {
                n = split($0, L, "\n"); types = ""; suites = ""; enabled = 1
                for (i = 1; i <= n; i++) {
                    low = tolower(L[i])
                    if (low ~ /^types:/) types = L[i]
                    if (low ~ /^suites:/) suites = L[i]
                    if (low ~ /^enabled:[ \t]*no/) enabled = 0
                }
                if (!enabled) next
                if ((types " ") !~ /[ \t]deb[ \t]/) next
                if (suites !~ /bookworm/) next
                for (i = 1; i <= n; i++) {
                    line = L[i]
                    if (tolower(line) ~ /^types:/) line = "Types: deb-src"
                    print line
                }
                print ""
            }' "${sources_files[@]}")" || return
    fi
    if ((${#list_files[@]})); then
        oneline="$(grep -hE '^[[:space:]]*deb[[:space:]].*bookworm' "${list_files[@]}" |
            sed -E 's/^([[:space:]]*)deb([[:space:]])/\1deb-src\2/' || true)"
    fi

    if [[ -z "$deb822" && -z "$oneline" ]]; then
        echo "no bookworm deb entry found in /etc/apt; using deb.debian.org"
        deb822="Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
"
    fi
    if [[ -n "$deb822" ]]; then
        {
            echo "# Added by authsvc scripts/kube-apiserver.sh: source packages for building kube-apiserver."
            printf '%s\n' "$deb822"
        } >"$DEB_SRC_FILE" || return
        echo "wrote $DEB_SRC_FILE:"
        cat "$DEB_SRC_FILE"
    fi
    if [[ -n "$oneline" ]]; then
        {
            echo "# Added by authsvc scripts/kube-apiserver.sh: source packages for building kube-apiserver."
            printf '%s\n' "$oneline"
        } >"$DEB_SRC_LIST_FILE" || return
        echo "wrote $DEB_SRC_LIST_FILE:"
        cat "$DEB_SRC_LIST_FILE"
    fi
}

need_source=0
have_source || need_source=1

if is_root; then
    install_pkgs=("${missing_pkgs[@]}")
    ((etcd_missing)) && install_pkgs+=(etcd-server)
    if ((need_source || ${#install_pkgs[@]})); then
        if ((need_source)); then
            run_step "adding a deb-src entry for bookworm" add_deb_src_entries
        fi
        run_step "apt-get update" apt_get update
        if ((${#install_pkgs[@]})); then
            run_step "apt-get install ${install_pkgs[*]}" \
                apt_get install -y --no-install-recommends "${install_pkgs[@]}"
        fi
        if ((need_source)) && ! have_source; then
            die "apt has no source package ${DEB_SRC_PACKAGE}=${DEB_VERSION} even after adding deb-src entries (see $DEB_SRC_FILE and $build_log)"
        fi
    fi
else
    if ((${#missing_pkgs[@]})); then
        ((etcd_missing)) && missing_pkgs+=(etcd-server)
        die "missing build tools; install them as root (or run this script as root): apt-get install -y ${missing_pkgs[*]}"
    fi
    if ((need_source)); then
        die "apt has no source package ${DEB_SRC_PACKAGE}=${DEB_VERSION}: add a 'Types: deb-src' entry for bookworm (like the deb one) under /etc/apt/sources.list.d/ and run apt-get update as root (or run this script as root once)"
    fi
    if ((etcd_missing)); then
        log "warning: /usr/bin/etcd is missing (tests need it): apt-get install -y etcd-server"
    fi
fi

# --- Fetch and unpack the source ------------------------------------------------
# Remove a build tree left by an earlier failed run (we hold the lock, so it's not in use).
build_dir="${cache_dir}/build"
rm -rf "$build_dir"
for name in "${to_build[@]}"; do
    rm -f "$cache_dir/.${name}.tmp."* "$cache_dir/${name}.recipe.tmp."*
done

mkdir -p "$build_dir"
gopath="${build_dir}/gopath"
src_dir="${build_dir}/src"
tmp_binary=""
cleanup() {
    local rc=$?
    [[ -z "$tmp_binary" ]] || rm -f "$tmp_binary"
    if ((rc != 0)) && [[ -d "$build_dir" ]]; then
        printf '%s: build tree kept for inspection: %s (removed by the next run)\n' "$prog" "$build_dir" >&2
    fi
}
trap cleanup EXIT

download_source() {
    cd "$build_dir" || return
    # apt (as root) downloads as user _apt; let it write here to avoid the
    # "Download is performed unsandboxed" warning.
    if is_root && id _apt >/dev/null 2>&1; then
        chown _apt "$build_dir" || true
    fi
    apt-get source --download-only "${DEB_SRC_PACKAGE}=${DEB_VERSION}"
}
run_step "apt-get source --download-only ${DEB_SRC_PACKAGE}=${DEB_VERSION}" download_source

dsc="${build_dir}/${DEB_SRC_PACKAGE}_${DEB_VERSION#*:}.dsc"
[[ -f "$dsc" ]] || { current_step="locating the .dsc"; echo "no $dsc after apt-get source" >>"$build_log"; fail_step 1; }

# The .dsc and tarballs were checked by apt against the signed Sources index;
# dpkg-source may warn that it cannot verify the uploader's signature.
run_step "unpacking the source (dpkg-source -x)" dpkg-source -x "$dsc" "$src_dir"
rm -f "$build_dir"/*.tar.* "$build_dir"/*.dsc

mkdir -p "${gopath}/src/k8s.io"
ln -s "$src_dir" "${gopath}/src/k8s.io/kubernetes"

# --- Build ------------------------------------------------------------------------
mkdir -p "${cache_dir}/gocache"
go_env=(
    env -u GOFLAGS -u GOROOT -u GOBIN -u GOOS -u GOARCH -u MAKEFLAGS -u MAKELEVEL -u MFLAGS
    PATH="$(dirname "$GO_BIN"):/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    GOPATH="$gopath"
    GOCACHE="${cache_dir}/gocache"
    GO111MODULE=off
    GOPROXY=off
    GOSUMDB=off
    GOTOOLCHAIN=local
    CGO_ENABLED=0
)

gen_openapi() {
    cd "${gopath}/src/k8s.io/kubernetes" || return
    "${go_env[@]}" make gen_openapi
}
# Only kube-apiserver serves OpenAPI; kubeadm builds without the generated file.
if [[ " ${to_build[*]} " == *" kube-apiserver "* ]]; then
    run_step "generating OpenAPI definitions (make gen_openapi)" gen_openapi
fi

# Stamp both version packages, as upstream's hack/lib/version.sh does: `--version`
# and most of the server read component-base's, but /version is served by the
# aggregator, which reads client-go's. gitCommit needs no stamp: the tarball was made
# by `git archive`, which already wrote the upstream commit into both base.go files.
build_date="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
ldflags=""
for version_pkg in k8s.io/kubernetes/vendor/k8s.io/client-go/pkg/version \
    k8s.io/kubernetes/vendor/k8s.io/component-base/version; do
    ldflags+=" -X ${version_pkg}.gitVersion=${KUBE_GIT_VERSION}"
    ldflags+=" -X ${version_pkg}.gitMajor=${KUBE_GIT_MAJOR}"
    ldflags+=" -X ${version_pkg}.gitMinor=${KUBE_GIT_MINOR}"
    ldflags+=" -X ${version_pkg}.gitTreeState=clean"
    ldflags+=" -X ${version_pkg}.buildDate=${build_date}"
done
ldflags="${ldflags# }"

# go_build NAME: cmd/NAME of the tree into $tmp_binary.
go_build() {
    cd "${gopath}/src/k8s.io/kubernetes" || return
    "${go_env[@]}" "$GO_BIN" version || return
    "${go_env[@]}" "$GO_BIN" build -o "$tmp_binary" -ldflags "$ldflags" "k8s.io/kubernetes/cmd/$1"
}

# check_binary NAME: the new binary reports the version we build.
check_binary() {
    local out expected
    out="$(reported_version "$1" "$tmp_binary")" || return
    expected="$(expected_version "$1")"
    echo "$out"
    [[ "$out" == "$expected" ]] || {
        echo "expected '$expected'"
        return 1
    }
    # /version (served by the aggregator) reads client-go's version package.
    "$GO_BIN" version -m "$tmp_binary" | grep -F -- "client-go/pkg/version.gitVersion=${KUBE_GIT_VERSION}" || {
        echo "the client-go version package was not stamped with ${KUBE_GIT_VERSION}"
        return 1
    }
}

for name in "${to_build[@]}"; do
    binary="${cache_dir}/${name}"
    tmp_binary="${cache_dir}/.${name}.tmp.$$"
    start=$SECONDS
    case "$name" in
        kube-apiserver) run_step "building kube-apiserver (go build, ~5 minutes)" go_build "$name" ;;
        *) run_step "building $name (go build)" go_build "$name" ;;
    esac
    log "go build of $name took $((SECONDS - start))s"
    run_step "checking the new $name's version" check_binary "$name"
    mv -f "$tmp_binary" "$binary"
    tmp_binary=""
    printf '%s\n' "$BUILD_RECIPE" >"${binary}.recipe.tmp.$$" && mv -f "${binary}.recipe.tmp.$$" "${binary}.recipe"
    log "cached $binary"
done
current_step="removing the build tree"
rm -rf "$build_dir"
for name in "${components[@]}"; do
    printf '%s\n' "${cache_dir}/${name}"
done
