#!/usr/bin/env bash
# prior-design.rst manual test 3, "Read from Parent": an unwritten child reads its parent's
# data through stock `rbd bench`/`rbd export` and through rbd-ext, byte for byte, and its
# object map (stock) and clone map (rbd-ext) check clean.
WU=prior03
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.bash"

wu_image parent rbd parent
wu_image child rbd child1
# 10 MiB of random data at the start of a 100 MiB parent (the rest is a hole).
head -c $((10 << 20)) /dev/urandom >"$WU_TMP/data"
rbd create "$parent" --size 100M --image-feature layering,exclusive-lock,object-map
rbd-ext write "$parent" --offset 0 --input "$WU_TMP/data"
cp "$WU_TMP/data" "$WU_TMP/model"
truncate -s 100M "$WU_TMP/model"
rbd-ext clone-standalone "$parent" "$child"

rbd bench --io-type read "$child" --io-size 4K --io-total 10M | tee "$WU_TMP/bench"
grep -q "ops: 2560" "$WU_TMP/bench"
rbd-ext bench --io-type read "$child" --io-size 4K --io-total 10M
rbd object-map check --no-progress "$child"
rbd-ext clone-map check "$child"

rbd export --no-progress "$child" "$WU_TMP/child.stock"
cmp "$WU_TMP/child.stock" "$WU_TMP/model"
rbd-ext export "$child" - | cmp - "$WU_TMP/model"
rbd-ext read "$child" --offset 4194000 --length 1000 | cmp - <(tail -c +4194001 "$WU_TMP/model" | head -c 1000)
# Reading did not copy anything up: the child has no data objects.
prefix=$(rbd info --format json "$child" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["block_name_prefix"])')
test "$(rados -p rbd ls | grep -c "^$prefix\." || true)" -eq 0
echo "prior_03_read_through: ok"
