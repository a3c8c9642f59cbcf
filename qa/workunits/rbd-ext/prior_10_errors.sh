#!/usr/bin/env bash
# prior-design.rst manual test 10, "Error Handling": a missing parent, a snapshot spec and an
# unknown feature are refused with a clear message and errno (usage errors with status 2),
# and nothing is left behind.
WU=prior10
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.bash"

wu_image parent rbd parent
rbd create "$parent" --size 100M --image-feature layering,exclusive-lock,object-map
wu_image e1 rbd child_error1
wu_image e2 rbd child_error2
wu_image e3 rbd child_error3

# 1. A parent that does not exist.
set +e
rbd-ext clone-standalone "rbd/wu-prior10-nonexistent-$$" "$e1" 2>"$WU_TMP/err1"
rc1=$?
# 2. A snapshot spec (standalone clones clone HEAD).
rbd-ext clone-standalone "$parent@snap" "$e2" 2>"$WU_TMP/err2"
rc2=$?
# 3. An unknown feature.
rbd-ext clone-standalone "$parent" "$e3" --image-feature invalid_feature 2>"$WU_TMP/err3"
rc3=$?
set -e
cat "$WU_TMP"/err[123] >&2
test "$rc1" -eq 1 && grep -q "^rbd-ext: .*does not exist.*(ENOENT)" "$WU_TMP/err1"
test "$rc2" -eq 1 && grep -q "snapshot" "$WU_TMP/err2" && grep -q "(EINVAL)" "$WU_TMP/err2"
test "$rc3" -eq 2 && grep -q "unknown feature 'invalid_feature'" "$WU_TMP/err3"

# 4. The child exists already; 5. the parent is the child.
wu_image c rbd child
rbd-ext clone-standalone "$parent" "$c"
expect_fail rbd-ext clone-standalone "$parent" "$c"
grep -q "(EEXIST)" "$WU_TMP/err"
expect_fail rbd-ext clone-standalone "$parent" "$parent"

# Nothing was created by the failures, and the parent lists only the real child.
for img in "$e1" "$e2" "$e3"; do
    expect_fail rbd info "$img"
done
test "$(rbd-ext children "$parent")" = "$c"
# The CLI did not crash on any of them (no signal exit statuses above) and the OSD is up.
ceph osd stat --format json | "$PY" -c 'import json,sys; d=json.load(sys.stdin); assert d["num_up_osds"] == d["num_osds"] > 0, d'
echo "prior_10_errors: ok"
