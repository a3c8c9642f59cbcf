#!/usr/bin/env bash
# prior-design.rst manual test 4, "Write to Clone (Copy-on-Write)": a write to the child
# copies up the inherited object; the child then differs from the parent exactly where it
# was written, the parent is unchanged, the object map checks clean and the clone map shows
# the object as copied-up.
WU=prior04
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.bash"

wu_image parent rbd parent
wu_image child rbd child1
head -c $((10 << 20)) /dev/urandom >"$WU_TMP/parent.raw"
truncate -s 100M "$WU_TMP/parent.raw"
rbd import --no-progress --image-feature layering,exclusive-lock,object-map "$WU_TMP/parent.raw" "$parent"
rbd-ext clone-standalone "$parent" "$child"
cp "$WU_TMP/parent.raw" "$WU_TMP/model"

echo "test data for child" >"$WU_TMP/w1"
write_both "$child" 0 "$WU_TMP/w1" "$WU_TMP/model"
# Unaligned, across the object 1/2 boundary.
head -c 70000 /dev/urandom >"$WU_TMP/w2"
write_both "$child" $((8 * 1024 * 1024 - 30000)) "$WU_TMP/w2" "$WU_TMP/model"

rbd export --no-progress "$child" "$WU_TMP/child.stock"
rbd export --no-progress "$parent" "$WU_TMP/parent.after"
cmp "$WU_TMP/child.stock" "$WU_TMP/model"
cmp "$WU_TMP/parent.after" "$WU_TMP/parent.raw"
if cmp -s "$WU_TMP/child.stock" "$WU_TMP/parent.after"; then
    echo "child and parent are identical after a write to the child" >&2
    exit 1
fi
rbd object-map check --no-progress "$child"
rbd-ext clone-map check "$child"
rbd-ext clone-map show "$child" | tee "$WU_TMP/map"
# Objects 0 (first write) and 1, 2 (second write) were inherited and are now copied up.
grep -qx "0..3 copied-up" "$WU_TMP/map"
echo "prior_04_copy_on_write: ok"
