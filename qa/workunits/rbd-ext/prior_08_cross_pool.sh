#!/usr/bin/env bash
# prior-design.rst manual test 8, "Cross-Pool Clone": a standalone clone in pool rbd2 of a
# parent in pool rbd shows the cross-pool parent, is listed under it, reads its data and
# protects it from removal.
WU=prior08
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.bash"

wu_image parent rbd parent_cross
wu_image child rbd2 child_cross
head -c $((10 << 20)) /dev/urandom >"$WU_TMP/parent.raw"
truncate -s 100M "$WU_TMP/parent.raw"
rbd import --no-progress --image-feature layering,exclusive-lock,object-map "$WU_TMP/parent.raw" "$parent"
rbd-ext clone-standalone "$parent" "$child"

rbd info "$child" | tee "$WU_TMP/info"
test "$(stock_parent_of "$child")" = "$parent@"
grep -q "overlap: 100 MiB" "$WU_TMP/info"
test "$(rbd-ext children "$parent")" = "$child"
rbd bench --io-type read "$child" --io-size 4K --io-total 10M
rbd export --no-progress "$child" - | cmp - "$WU_TMP/parent.raw"
rbd-ext export "$child" - | cmp - "$WU_TMP/parent.raw"

expect_fail rbd rm --no-progress "$parent"
expect_fail rbd-ext rm "$parent"
grep -q "$child" "$WU_TMP/err"

rbd-ext rm "$child"
test -z "$(rbd-ext children "$parent")"
rbd-ext rm "$parent"
echo "prior_08_cross_pool: ok"
