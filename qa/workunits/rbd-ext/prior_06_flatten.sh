#!/usr/bin/env bash
# prior-design.rst manual test 6, "Flatten Standalone Clone": flatten removes the parent
# reference (stock and rbd-ext info), keeps the data identical to the parent's, copies every
# inherited object into the child and removes the child from the parent's children list.
WU=prior06
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.bash"

wu_image parent rbd parent2
wu_image child rbd child_flatten
rbd create "$parent" --size 100M --image-feature layering,exclusive-lock,object-map
rbd bench --io-type write "$parent" --io-size 4K --io-total 50M
rbd-ext clone-standalone "$parent" "$child"

test "$(stock_parent_of "$child")" = "$parent@"
rbd-ext flatten "$child"
test -z "$(stock_parent_of "$child")"
rbd-ext info --format json "$child" | "$PY" -c 'import json,sys; i=json.load(sys.stdin); assert not i.get("parent"), i'

rbd export --no-progress "$parent" "$WU_TMP/parent2_data"
rbd export --no-progress "$child" "$WU_TMP/child_flatten_data"
cmp "$WU_TMP/parent2_data" "$WU_TMP/child_flatten_data"
test -z "$(rbd-ext children "$parent")"
rbd object-map check --no-progress "$child"

# Independent now: a write to the parent does not show in the child, and the parent can go.
echo "parent changes after flatten" | rbd-ext write "$parent" --offset 0
rbd-ext export "$child" - | cmp - "$WU_TMP/child_flatten_data"
rbd-ext rm "$parent"
rbd-ext export "$child" - | cmp - "$WU_TMP/child_flatten_data"
echo "prior_06_flatten: ok"
