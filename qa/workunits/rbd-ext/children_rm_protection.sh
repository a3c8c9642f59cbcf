#!/usr/bin/env bash
# Children tracking and removal protection against every way a child can go away:
# - while a parent has a child: rbd-ext refuses rm (names the children, EBUSY), stock rbd
#   refuses rm / resize / snap create / data writes (EROFS), reads and export still work;
# - the protection bits are set once and restored exactly (the parent's own features and
#   op_features) when the last child goes, whichever tool removed it;
# - children removed by stock `rbd rm` leave stale entries that rbd-ext drops (children
#   listing and rm of the parent reconcile);
# - a child cannot be removed while it has children of its own.
WU=children_rm
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.bash"

wu_image parent rbd parent
rbd create "$parent" --size 40M --image-feature layering,exclusive-lock
head -c $((8 << 20)) /dev/urandom >"$WU_TMP/data"
rbd-ext write "$parent" --offset 0 --input "$WU_TMP/data"
rbd-ext export "$parent" "$WU_TMP/parent.raw"
rbd info --format json "$parent" | "$PY" -c 'import json,sys; i=json.load(sys.stdin); print(i["features"], i.get("op_features"))' >"$WU_TMP/features.before"

wu_image a rbd a
wu_image b rbd2 b
wu_image c rbd c
wu_image ca rbd ca
for x in "$a" "$b" "$c"; do rbd-ext clone-standalone "$parent" "$x"; done
rbd-ext clone-standalone "$c" "$ca"
printf '%s\n' "$a" "$b" "$c" | sort | diff - <(rbd-ext children "$parent" | sort)

# Protected: by rbd-ext and by stock tools, for everything that changes the parent.
rbd info "$parent" | grep -q "migrating"
test "$(rbd-ext protection "$parent")" = clones
expect_fail rbd-ext rm "$parent"
grep -q "EBUSY" "$WU_TMP/err"
for x in "$a" "$b" "$c"; do grep -q "$x" "$WU_TMP/err"; done
expect_fail rbd rm --no-progress "$parent"
grep -q "Read-only file system" "$WU_TMP/err"
expect_fail rbd resize --no-progress --size 80M "$parent"
expect_fail rbd snap create "$parent@s"
expect_fail rbd-ext write "$parent" --offset 0 --input "$WU_TMP/data"
grep -q "EROFS" "$WU_TMP/err"
rbd export --no-progress "$parent" - | cmp - "$WU_TMP/parent.raw"
rbd-ext export "$parent" - | cmp - "$WU_TMP/parent.raw"

# A child with a child of its own is protected the same way.
expect_fail rbd-ext rm "$c"
grep -q "$ca" "$WU_TMP/err"

# Stock rm of child a (a local standalone child is a plain image to stock librbd): its entry
# goes stale; rbd-ext drops it when listing.
rbd rm --no-progress "$a"
printf '%s\n' "$b" "$c" | sort | diff - <(rbd-ext children "$parent" 2>"$WU_TMP/note" | sort)
grep -q "stale child entry" "$WU_TMP/note"
# Removing b with rbd-ext detaches it; the parent is still protected by c.
rbd-ext rm "$b"
test "$(rbd-ext children "$parent")" = "$c"
expect_fail rbd rm --no-progress "$parent"

# c's own child goes first; then c by stock rm: the parent's last entry is stale, and
# rbd-ext rm of the parent reconciles it and succeeds; first check the bits came back when
# rbd-ext listed the children.
rbd-ext rm "$ca"
rbd rm --no-progress "$c"
test -z "$(rbd-ext children "$parent" 2>/dev/null)"
rbd info --format json "$parent" | "$PY" -c 'import json,sys; i=json.load(sys.stdin); print(i["features"], i.get("op_features"))' | diff - "$WU_TMP/features.before"
# Writable again, by stock and rbd-ext.
rbd bench --io-type write --io-size 4K --io-total 64K "$parent"
rbd-ext write "$parent" --offset 0 --input "$WU_TMP/data"
rbd-ext rm "$parent"
expect_fail rbd info "$parent"
echo "children_rm_protection: ok"
