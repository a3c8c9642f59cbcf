#!/usr/bin/env bash
# prior-design.rst manual test 1, "Basic Clone Creation and Verification", as a check:
# a standalone clone of a 100 MiB parent shows `parent: POOL/IMAGE@` (no snapshot name),
# an overlap of the whole parent and the parent's features, through stock `rbd info` and
# `rbd-ext info --format json`.
WU=prior01
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.bash"

wu_image parent rbd parent
wu_image child rbd child1
rbd create "$parent" --size 100M --image-feature layering,exclusive-lock,object-map
rbd bench --io-type write "$parent" --io-size 4K --io-total 10M
parent_features=$(features_of "$parent")

rbd-ext clone-standalone "$parent" "$child"

rbd info "$child" | tee "$WU_TMP/info"
grep -q "size 100 MiB in 25 objects" "$WU_TMP/info"
grep -q "order 22 (4 MiB objects)" "$WU_TMP/info"
test "$(stock_parent_of "$child")" = "$parent@"
grep -q "overlap: 100 MiB" "$WU_TMP/info"
test "$(features_of "$child")" = "$parent_features"

rbd-ext info --format json "$child" >"$WU_TMP/info.json"
"$PY" - "$WU_TMP/info.json" "$parent" <<'PY'
import json, sys
info, parent = json.load(open(sys.argv[1])), sys.argv[2]
assert info["size"] == 100 << 20 and info["object_size"] == 4 << 20, info
assert info["block_name_prefix"] == "rbd_data." + info["id"], info
p = info["parent"]
assert (p["pool"] + "/" + p["image"], p["type"], p["overlap"]) == (parent, "standalone", 100 << 20), p
PY
echo "prior_01_basic_clone: ok"
