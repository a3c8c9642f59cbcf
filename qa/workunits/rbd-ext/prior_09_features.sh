#!/usr/bin/env bash
# prior-design.rst manual test 9, "Image Features Compatibility": a clone of a parent with
# layering, exclusive-lock, object-map and fast-diff has the same features, and stock
# `rbd lock list`, `rbd object-map check` and `rbd diff` work on it; an explicit
# --image-feature list is honoured.
WU=prior09
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.bash"

wu_image parent rbd parent_features
wu_image child rbd child_features
rbd create "$parent" --size 100M --image-feature layering,exclusive-lock,object-map,fast-diff
rbd bench --io-type write "$parent" --io-size 4K --io-total 10M
rbd-ext clone-standalone "$parent" "$child"

test "$(features_of "$child")" = "exclusive-lock,fast-diff,layering,object-map"
rbd lock list "$child"
test -z "$(rbd-ext lock ls "$child")"
rbd object-map check --no-progress "$child"
rbd diff "$child" >"$WU_TMP/diff"
rbd du "$child"

# rbd-ext takes the exclusive lock as librbd does and releases it when done: a stock
# writer takes it next and no lock is left behind.
head -c 1000 /dev/urandom >"$WU_TMP/w"
rbd-ext write "$child" --offset 0 --input "$WU_TMP/w"
rbd bench --io-type write "$child" --io-size 4K --io-total 64K --io-pattern seq
test -z "$(rbd-ext lock ls "$child")"
rbd object-map check --no-progress "$child"

# Fewer features on request.
wu_image slim rbd child_slim
rbd-ext clone-standalone "$parent" "$slim" --image-feature layering
test "$(features_of "$slim")" = "layering"
rbd export --no-progress "$slim" - | cmp - <(rbd export --no-progress "$parent" -)
echo "prior_09_features: ok"
