#!/usr/bin/env bash
# prior-design.rst manual test 5, "Parent Deletion Protection": a parent with standalone
# children cannot be removed (rbd-ext names the children; stock `rbd rm` fails with EROFS,
# as do stock resize and snap create); the children list shrinks as children are flattened,
# by rbd-ext and by stock `rbd flatten` (reconciled by `rbd-ext children`); once the last
# is gone the parent's own features come back and stock `rbd rm` removes it.
WU=prior05
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.bash"

wu_image parent rbd parent
rbd create "$parent" --size 100M --image-feature layering,exclusive-lock,object-map
rbd bench --io-type write "$parent" --io-size 4K --io-total 10M
features_before=$(features_of "$parent")
wu_image c1 rbd child1
wu_image c2 rbd child2
wu_image c3 rbd child3
for c in "$c1" "$c2" "$c3"; do rbd-ext clone-standalone "$parent" "$c"; done

# Step 1: removal refused, by both tools; the parent is still there.
expect_fail rbd-ext rm "$parent"
grep -q "3 standalone clone" "$WU_TMP/err"
grep -q "EBUSY" "$WU_TMP/err"
expect_fail rbd rm --no-progress "$parent"
grep -q "Read-only file system" "$WU_TMP/err"
expect_fail rbd resize --no-progress --size 200M "$parent"
expect_fail rbd snap create "$parent@s1"
rbd info "$parent" >/dev/null
test "$(rbd-ext children "$parent" | wc -l)" -eq 3

# Steps 3-4: flatten one child with rbd-ext.
rbd-ext flatten "$c1"
printf '%s\n' "$c2" "$c3" | sort | diff - <(rbd-ext children "$parent" | sort)
test -z "$(stock_parent_of "$c1")"

# Step 5: flatten one with stock rbd (it cannot detach from the HEAD children set; rbd-ext
# drops the stale entry when it lists) and the last with rbd-ext.
rbd flatten --no-progress "$c2"
test -z "$(stock_parent_of "$c2")"
test "$(rbd-ext children "$parent" 2>"$WU_TMP/note")" = "$c3"
grep -q "stale child entry" "$WU_TMP/note"
rbd-ext flatten "$c3"

# Step 6: no children; the protection is lifted and the features are the parent's own.
test -z "$(rbd-ext children "$parent")"
test "$(features_of "$parent")" = "$features_before"

# Step 7: stock rm succeeds (a stock client that failed above may still hold a watch for
# up to 30 s).
retry_60s rbd rm --no-progress "$parent"
expect_fail rbd info "$parent"
echo "prior_05_parent_protection: ok"
