#!/usr/bin/env bash
# A standalone clone whose parent is in another cluster (DESIGN.md §5), through the CLI:
# the child records a remote-standalone parent and a config:// key reference (never the
# key); it reads the remote parent's data and copies up into the local cluster; the remote
# parent refuses removal (rbd-ext EBUSY, stock EROFS); stock librbd
# refuses to open the child (compat 3) instead of reading zeros; after flatten the remote
# parent is free and can be removed.
# Needs `clone-standalone --remote-cluster-conf` and a second cluster: RBD_EXT_REMOTE_CEPH_CONF
# (qa/run boots one for cluster facets with `remote: true`: qa/run rbd-ext/remote).
WU=remote_parent
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.bash"

rbd-ext clone-standalone --help | grep -q -- --remote-cluster-conf ||
    wu_skip "needs rbd-ext clone-standalone --remote-cluster-conf (remote parents)"
[[ -n ${RBD_EXT_REMOTE_CEPH_CONF:-} ]] ||
    wu_skip "needs a second cluster (RBD_EXT_REMOTE_CEPH_CONF unset); run qa/run rbd-ext/remote"
R=$RBD_EXT_REMOTE_CEPH_CONF
RK=${RBD_EXT_REMOTE_KEYRING:-$(dirname "$R")/keyring}
rname=wu-remote-$$
rparent=rbd/wu-remote-parent-$$
remote() { CEPH_CONF=$R "$@"; }
remote_cleanup() {
    local rc=$? k
    set +e
    [[ -n ${child:-} ]] && rbd-ext rm "$child" >/dev/null 2>&1
    remote rbd-ext rm "$rparent" >/dev/null 2>&1 || remote rbd rm --no-progress "$rparent" >/dev/null 2>&1
    for k in $(ceph config-key ls 2>/dev/null | "$PY" -c 'import json,sys; print(" ".join(k for k in json.load(sys.stdin) if sys.argv[1] in k))' "$rname"); do
        ceph config-key rm "$k" >/dev/null
    done
    (exit "$rc")
    wu_cleanup
}
trap remote_cleanup EXIT

size=$((12 * 1024 * 1024 + 777))
head -c "$size" /dev/urandom >"$WU_TMP/parent.raw"
remote rbd import --no-progress "$WU_TMP/parent.raw" "$rparent"

wu_image child rbd rchild
rbd-ext clone-standalone "$rparent" "$child" --remote-cluster-conf "$R" --remote-keyring "$RK" --remote-cluster-name "$rname"
rbd-ext info --format json "$child" >"$WU_TMP/info.json"
"$PY" - "$WU_TMP/info.json" "$rname" "$size" <<'PY'
import json, sys
info, rname, size = json.load(open(sys.argv[1])), sys.argv[2], int(sys.argv[3])
p = info["parent"]
assert p["type"] == "remote-standalone", p
assert p["overlap"] == size, p
assert rname in json.dumps(p), p
PY
# The key itself is nowhere in the child's header or in info.
set +x # the key must not reach the log either
key=$("$PY" -c 'import configparser,sys; c=configparser.ConfigParser(); c.read(sys.argv[1]); print(c["client.admin"]["key"])' "$RK" 2>/dev/null) || key=""
if [[ -n $key ]]; then
    ! grep -qF "$key" "$WU_TMP/info.json"
    prefix=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["block_name_prefix"])' "$WU_TMP/info.json")
    ! rados -p rbd listomapvals "rbd_header.${prefix#rbd_data.}" | grep -qF "$key"
fi
set -x

# Reads come from the other cluster; writes copy up locally; the remote parent is unchanged.
rbd-ext export "$child" - | cmp - "$WU_TMP/parent.raw"
cp "$WU_TMP/parent.raw" "$WU_TMP/model"
head -c 300000 /dev/urandom >"$WU_TMP/w"
write_both "$child" 4000000 "$WU_TMP/w" "$WU_TMP/model"
rbd-ext export "$child" - | cmp - "$WU_TMP/model"
remote rbd export --no-progress "$rparent" - | cmp - "$WU_TMP/parent.raw"

# Stock librbd refuses the child rather than reading zeros for the remote data.
expect_fail rbd info "$child"
expect_fail rbd export --no-progress "$child" -

# The remote parent is protected in its own cluster by its child in this one. (`rbd-ext
# children` lists only children in the parent's own cluster: the other cluster's set is
# kept apart, keyed by that cluster's fsid.)
remote rbd-ext children "$rparent"
expect_fail remote rbd-ext rm "$rparent"
grep -q "EBUSY" "$WU_TMP/err"
expect_fail remote rbd rm --no-progress "$rparent"

# The clone map agrees with the objects (needs the parent's object list: in the remote
# cluster).
rbd-ext clone-map check "$child"

# Flatten: the child no longer needs the remote cluster; the remote parent is free.
rbd-ext flatten "$child"
rbd-ext info --format json "$child" | "$PY" -c 'import json,sys; i=json.load(sys.stdin); assert not i.get("parent"), i'
rbd export --no-progress "$child" - | cmp - "$WU_TMP/model"
test -z "$(remote rbd-ext children "$rparent")"
remote rbd-ext rm "$rparent"
rbd-ext export "$child" - | cmp - "$WU_TMP/model"
echo "remote_parent: ok"
