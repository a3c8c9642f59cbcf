#!/usr/bin/env bash
# The standalone clone lifecycle through the rbd-ext CLI, checked byte for byte with cmp and
# cross-checked with stock rbd: clone, info, read-through, unaligned copy-on-write, export,
# children, parent protection, flatten, rm. Needs rbd-ext on PATH (qa/run-workunits puts
# target/release there) and CEPH_CONF.
set -euxo pipefail
PY=${RBD_EXT_PY:-/usr/bin/python3} # qa/run --release R: R's python3-rados, in its chroot

tmp=$(mktemp -d)
parent=rbd/wu-clone-parent-$$
child=rbd/wu-clone-child-$$
cleanup() {
    for img in "$child" "$parent"; do
        if rbd info "$img" >/dev/null 2>&1; then
            rbd-ext rm "$img" || rbd rm --no-progress "$img" || true
        fi
    done
    rm -rf "$tmp"
}
trap cleanup EXIT

# A parent of three whole 4 MiB objects and a partial fourth, from random data.
size=$((12 * 1024 * 1024 + 12345))
head -c "$size" /dev/urandom >"$tmp/parent.raw"
rbd import --no-progress "$tmp/parent.raw" "$parent"

rbd-ext clone-standalone "$parent" "$child"

# info: a standalone parent whose overlap is the whole image.
rbd-ext info --format json "$child" >"$tmp/info.json"
"$PY" - "$tmp/info.json" "$size" "$parent" <<'PY'
import json, sys
info = json.load(open(sys.argv[1]))
size, parent = int(sys.argv[2]), sys.argv[3]
assert info["size"] == size, info
p = info["parent"]
assert p["type"] == "standalone", p
assert p["overlap"] == size, p
assert "%s/%s" % (p["pool"], p["image"]) == parent, p
PY
rbd info "$child" | grep -q "parent: $parent@"

# Reads go through to the parent.
rbd-ext read "$child" --offset 0 --length "$size" >"$tmp/child.read"
cmp "$tmp/child.read" "$tmp/parent.raw"

# Unaligned writes (across objects 0/1, and into the partial last object) copy up.
cp "$tmp/parent.raw" "$tmp/model"
head -c 300000 /dev/urandom >"$tmp/w1"
w1_at=$((4 * 1024 * 1024 - 1000))
rbd-ext write "$child" --offset "$w1_at" <"$tmp/w1"
dd if="$tmp/w1" of="$tmp/model" bs=1M seek="$w1_at" oflag=seek_bytes conv=notrunc status=none
head -c 5000 /dev/urandom >"$tmp/w2"
w2_at=$((size - 7000))
rbd-ext write "$child" --offset "$w2_at" --input "$tmp/w2"
dd if="$tmp/w2" of="$tmp/model" bs=1M seek="$w2_at" oflag=seek_bytes conv=notrunc status=none

# The parent is unchanged; the child equals the model through rbd-ext and stock rbd.
rbd-ext export "$parent" - | cmp - "$tmp/parent.raw"
rbd-ext export "$child" "$tmp/child.rbd-ext"
cmp "$tmp/child.rbd-ext" "$tmp/model"
rbd export --no-progress "$child" "$tmp/child.stock"
cmp "$tmp/child.stock" "$tmp/model"
rbd-ext clone-map check "$child"

# The parent lists its child and cannot be removed while it has it.
test "$(rbd-ext children "$parent")" = "$child"
if rbd-ext rm "$parent" 2>"$tmp/rm.err"; then
    echo "rm of a parent with a child succeeded" >&2
    exit 1
fi
grep -q "$child" "$tmp/rm.err"
rbd info "$parent" >/dev/null

# Flatten detaches the child; its data stays; then both can go.
rbd-ext flatten "$child"
test -z "$(rbd-ext children "$parent")"
rbd-ext export "$child" - | cmp - "$tmp/model"
rbd-ext rm "$parent"
rbd-ext rm "$child"
if rbd info "$child" 2>/dev/null || rbd info "$parent" 2>/dev/null; then
    echo "images still exist after rm" >&2
    exit 1
fi
echo "clone_lifecycle: ok"
