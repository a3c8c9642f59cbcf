# Sourced by the workunits in qa/workunits/rbd-ext/ (not a workunit itself: the runners pick
# up only *.sh in the directory above). Needs CEPH_CONF and rbd-ext on PATH (qa/run and
# qa/run-workunits put target/release there).
#
#   WU=name; . "$(dirname "$0")/lib/common.bash"
#   wu_image p rbd parent             # p=rbd/wu-<name>-parent-<pid>, removed at exit
#   expect_fail CMD...                # CMD must exit non-zero; its stderr is in $WU_TMP/err
#   wu_skip "needs X"                 # prints `SKIP: needs X` and exits 0 (counted as skipped)
set -euxo pipefail

: "${CEPH_CONF:?export CEPH_CONF first: eval \"\$(qa/cluster up)\"}"
: "${WU:?set WU (the workunit name) before sourcing common.bash}"
command -v rbd-ext >/dev/null || { echo "rbd-ext is not on PATH (build: cargo build --release -p rbd-ext-cli)" >&2; exit 1; }

WU_TMP=$(mktemp -d "${TMPDIR:-/tmp}/wu-$WU.XXXXXX")
WU_IMAGES=()
WU_NAMESPACES=()
# Debian's python3-rbd / python3-rados are built for /usr/bin/python3 only; with
# `qa/run --release R`, RBD_EXT_PY runs R's interpreter (and bindings) in its chroot.
PY=${RBD_EXT_PY:-/usr/bin/python3}

# Sets VAR to a unique image spec for this run, removed (children before parents, i.e. in
# reverse order of wu_image calls) when the script exits. Not `$(...)`: the list of images
# to remove must be kept by this shell, not by a subshell.
wu_image() { # VAR POOL[/NS] NAME
    printf -v "$1" '%s' "$2/wu-$WU-$3-$$"
    WU_IMAGES+=("${!1}")
}

# Sets VAR to POOL/<unique namespace>, created now and removed at exit (after the images).
wu_namespace() { # VAR POOL NAME
    printf -v "$1" '%s' "$2/wu-$WU-$3-$$"
    rbd namespace create "${!1}"
    WU_NAMESPACES+=("${!1}")
}

wu_skip() {
    set +x
    echo "SKIP: $*"
    exit 0
}

# Runs CMD, which must fail; its stderr is kept in $WU_TMP/err for the caller to grep.
expect_fail() {
    if "$@" 2>"$WU_TMP/err"; then
        echo "expected failure, but it succeeded: $*" >&2
        exit 1
    fi
    cat "$WU_TMP/err" >&2
}

# Retries CMD for up to 60 s while it fails: a stock client that died on an error (e.g. an
# EROFS write) leaves its watch on the header until the OSD times it out (30 s).
retry_60s() {
    local i
    for ((i = 0; i < 60; i++)); do
        "$@" && return 0
        sleep 1
    done
    "$@"
}

# Image features as a sorted comma-separated list of names (stock `rbd info`).
features_of() {
    rbd info --format json "$1" | "$PY" -c 'import json,sys; print(",".join(sorted(json.load(sys.stdin)["features"])))'
}

# The `parent:` line of stock `rbd info` (empty when none).
stock_parent_of() {
    rbd info "$1" | sed -n 's/^\tparent: //p'
}

# Writes FILE into IMAGE at OFFSET through rbd-ext and applies the same write to MODEL.
write_both() { # IMAGE OFFSET FILE MODEL
    rbd-ext write "$1" --offset "$2" --input "$3"
    dd if="$3" of="$4" bs=1M seek="$2" oflag=seek_bytes conv=notrunc status=none
}

wu_cleanup() {
    local rc=$? i img snap
    set +e
    for ((i = ${#WU_IMAGES[@]} - 1; i >= 0; i--)); do
        img=${WU_IMAGES[i]}
        rbd-ext rm "$img" >/dev/null 2>&1 && continue
        # Gone already? (stock `rbd info` cannot open S3-backed or remote clones: ask both)
        rbd info "$img" >/dev/null 2>&1 || rbd-ext info "$img" >/dev/null 2>&1 || continue
        # Stock snapshots (stock clones' parents): unprotect, then purge.
        for snap in $(rbd snap ls --format json "$img" 2>/dev/null | "$PY" -c 'import json,sys; print(" ".join(s["name"] for s in json.load(sys.stdin)))' 2>/dev/null); do
            rbd snap unprotect "$img@$snap" >/dev/null 2>&1
        done
        rbd snap purge --no-progress "$img" >/dev/null 2>&1
        rbd-ext rm "$img" >/dev/null 2>&1 || rbd rm --no-progress "$img" >/dev/null 2>&1 ||
            echo "cleanup: could not remove $img" >&2
    done
    for img in "${WU_NAMESPACES[@]}"; do
        rbd namespace remove "$img" >/dev/null 2>&1 || echo "cleanup: could not remove namespace $img" >&2
    done
    rm -rf "$WU_TMP"
    exit "$rc"
}
trap wu_cleanup EXIT
