#!/usr/bin/env bash
# Standalone clones across pools and RADOS namespaces: parent in rbd, child in a namespace of
# rbd2, grandchild back in rbd. Reads go through two levels to the right pool; copy-up
# writes land in the writer's pool only; the children lists name pool/namespace/image; a
# parent with a child in another pool or namespace cannot be removed; flattening the
# grandchild keeps its data and frees the chain.
WU=cross_pool
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.bash"

wu_namespace ns rbd2 ns
wu_image parent rbd parent
wu_image child "$ns" child
wu_image grand rbd grandchild

size=$((20 * 1024 * 1024 + 4096))
head -c "$size" /dev/urandom >"$WU_TMP/parent.raw"
rbd import --no-progress "$WU_TMP/parent.raw" "$parent"
rbd-ext clone-standalone "$parent" "$child"
test "$(stock_parent_of "$child")" = "$parent@"
rbd-ext info --format json "$child" | "$PY" -c '
import json, sys
p = json.load(sys.stdin)["parent"]
assert (p["pool"], p["pool_namespace"], p["type"]) == ("rbd", "", "standalone"), p'

# A copy-up write into the child (a parent is read-only once it has children, so before
# the grandchild exists).
cp "$WU_TMP/parent.raw" "$WU_TMP/child.model"
head -c 100000 /dev/urandom >"$WU_TMP/w1"
write_both "$child" 4000000 "$WU_TMP/w1" "$WU_TMP/child.model"

rbd-ext clone-standalone "$child" "$grand"
test "$(stock_parent_of "$grand")" = "$child@"
rbd-ext info --format json "$grand" | "$PY" -c '
import json, sys
p = json.load(sys.stdin)["parent"]
assert (p["pool"], p["pool_namespace"]) == ("rbd2", sys.argv[1]), p' "${ns#rbd2/}"
test "$(rbd-ext children "$parent")" = "$child"
test "$(rbd-ext children "$child")" = "$grand"
printf '%s\n' "$child" "$grand" | diff - <(rbd-ext children --descendants "$parent")
expect_fail rbd-ext write "$child" --offset 0 --input "$WU_TMP/w1"

# Two levels of read-through (child's own object, then the parent's), by both tools.
rbd-ext export "$grand" - | cmp - "$WU_TMP/child.model"
rbd export --no-progress "$grand" - | cmp - "$WU_TMP/child.model"

# A write into the grandchild near the end (copy-up from two levels up).
cp "$WU_TMP/child.model" "$WU_TMP/grand.model"
head -c 9000 /dev/urandom >"$WU_TMP/w2"
write_both "$grand" $((size - 9000)) "$WU_TMP/w2" "$WU_TMP/grand.model"
rbd-ext export "$parent" - | cmp - "$WU_TMP/parent.raw"
rbd-ext export "$child" - | cmp - "$WU_TMP/child.model"
rbd-ext export "$grand" - | cmp - "$WU_TMP/grand.model"
rbd export --no-progress "$grand" - | cmp - "$WU_TMP/grand.model"
# Copy-ups wrote to the writers' own pools: the child's objects are in rbd2/<ns>.
child_prefix=$(rbd info --format json "$child" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["block_name_prefix"])')
rados -p rbd2 --namespace "${ns#rbd2/}" ls | grep -q "^$child_prefix\."
test "$(rados -p rbd ls | grep -c "^$child_prefix\." || true)" -eq 0
rbd-ext clone-map check "$child"
rbd-ext clone-map check "$grand"

# Protection across pools and namespaces.
expect_fail rbd-ext rm "$parent"
grep -q "$child" "$WU_TMP/err"
expect_fail rbd-ext rm "$child"
grep -q "$grand" "$WU_TMP/err"
expect_fail rbd rm --no-progress "$child"

# Flatten the grandchild (its data now comes from two pools), then the chain comes apart
# from the leaves: each level can go once it has no children left. (Flattening the middle
# image while it has a child is refused with EROFS by rbd-ext today: a parent is read-only.)
rbd-ext flatten "$grand"
test -z "$(rbd-ext children "$child")"
rbd-ext export "$grand" - | cmp - "$WU_TMP/grand.model"
rbd-ext rm "$child"
test -z "$(rbd-ext children "$parent")"
rbd-ext rm "$parent"
rbd-ext export "$grand" - | cmp - "$WU_TMP/grand.model"
rbd export --no-progress "$grand" - | cmp - "$WU_TMP/grand.model"
echo "cross_pool: ok"
