#!/usr/bin/env bash
# prior-design.rst manual test 2, "Multiple Children Tracking": three standalone clones of one
# parent are each listed by `rbd-ext children`, the parent stays readable by stock `rbd info`,
# and `--descendants` also lists a grandchild (the prior design's bug 8).
WU=prior02
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.bash"

wu_image parent rbd parent
rbd create "$parent" --size 100M --image-feature layering,exclusive-lock,object-map
rbd bench --io-type write "$parent" --io-size 4K --io-total 10M
wu_image c1 rbd child1
wu_image c2 rbd child2
wu_image c3 rbd child3
for c in "$c1" "$c2" "$c3"; do
    rbd-ext clone-standalone "$parent" "$c"
done

rbd-ext children "$parent" >"$WU_TMP/children"
printf '%s\n' "$c1" "$c2" "$c3" | sort >"$WU_TMP/expect"
sort "$WU_TMP/children" | diff - "$WU_TMP/expect"
rbd info "$parent" | grep -q "size 100 MiB in 25 objects"
for c in "$c1" "$c2" "$c3"; do
    test "$(stock_parent_of "$c")" = "$parent@"
done

# A grandchild: listed under its own parent, and by --descendants under the grandparent.
wu_image g1 rbd grandchild1
rbd-ext clone-standalone "$c1" "$g1"
test "$(rbd-ext children "$c1")" = "$g1"
rbd-ext children "$parent" | sort | diff - "$WU_TMP/expect"
rbd-ext children --descendants "$parent" | sort >"$WU_TMP/desc"
printf '%s\n' "$c1" "$c2" "$c3" "$g1" | sort | diff - "$WU_TMP/desc"
# JSON lists the same children.
rbd-ext children --format json "$parent" | "$PY" -c 'import json,sys; d=json.load(sys.stdin); assert len(d) == 3, d'
echo "prior_02_multiple_children: ok"
