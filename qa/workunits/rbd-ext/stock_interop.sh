#!/usr/bin/env bash
# Stock librbd (python3-rbd via /usr/bin/python3) and rbd-ext take turns on one standalone
# child, model-checked: stock sees the HEAD parent (parent_info, overlap), reads through it,
# copies up on write; rbd-ext reads stock's writes and stock reads rbd-ext's; the object
# map checks clean; the clone map is reconciled after stock writes; no lock is left behind.
WU=stock_interop
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.bash"

wu_image parent rbd parent
wu_image child rbd child
size=$((24 * 1024 * 1024 + 512))
head -c "$size" /dev/urandom >"$WU_TMP/parent.raw"
rbd import --no-progress --image-feature layering,exclusive-lock,object-map,fast-diff "$WU_TMP/parent.raw" "$parent"
rbd-ext clone-standalone "$parent" "$child"
cp "$WU_TMP/parent.raw" "$WU_TMP/model"

# Round 1: stock sees the parent and writes at random places (copy-up through librbd).
"$PY" - "$child" "$parent" "$WU_TMP/model" 11 <<'PY'
import os, random, sys
import rados, rbd
spec, parent_spec, model_path, seed = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
pool, name = spec.split("/")
rnd = random.Random(seed)
with rados.Rados(conffile=os.environ["CEPH_CONF"]) as c, c.open_ioctx(pool) as io, rbd.Image(io, name) as img:
    pinfo = img.parent_info()
    assert pinfo[0] + "/" + pinfo[1] == parent_spec and pinfo[2] == "", pinfo
    assert img.overlap() == img.size(), (img.overlap(), img.size())
    size = img.size()
    model = bytearray(open(model_path, "rb").read())
    assert img.read(0, size) == bytes(model), "stock read-through differs from the parent"
    for _ in range(60):
        ln = rnd.choice([1, 512, 4096, 65536, 300000])
        off = rnd.randrange(0, size - ln)
        data = os.urandom(ln)
        assert img.write(data, off) == ln
        model[off:off + ln] = data
    img.flush()
    open(model_path, "wb").write(model)
print("stock round 1: ok")
PY
rbd-ext export "$child" - | cmp - "$WU_TMP/model"
rbd-ext export "$parent" - | cmp - "$WU_TMP/parent.raw"
rbd object-map check --no-progress "$child"
rbd-ext clone-map rebuild "$child"
rbd-ext clone-map check "$child"

# Round 2: rbd-ext writes, stock reads.
for i in 1 2 3 4 5 6; do
    ln=$(( (RANDOM % 200000) + 1 ))
    off=$(( (RANDOM * 32768 + RANDOM) % (size - ln) ))
    head -c "$ln" /dev/urandom >"$WU_TMP/w"
    write_both "$child" "$off" "$WU_TMP/w" "$WU_TMP/model"
done
test -z "$(rbd-ext lock ls "$child")"
rbd object-map check --no-progress "$child"
rbd-ext clone-map check "$child"
"$PY" - "$child" "$WU_TMP/model" <<'PY'
import os, sys
import rados, rbd
pool, name = sys.argv[1].split("/")
model = open(sys.argv[2], "rb").read()
with rados.Rados(conffile=os.environ["CEPH_CONF"]) as c, c.open_ioctx(pool) as io, rbd.Image(io, name, read_only=True) as img:
    assert img.read(0, img.size()) == model, "stock read differs from the model after rbd-ext writes"
    # Stock lists the images and stats the child like any clone.
    assert name in rbd.RBD().list(io)
    assert img.stat()["size"] == len(model)
print("stock round 2: ok")
PY

# Round 3: stock flattens (librbd copies the rest up and drops the parent record); rbd-ext
# reads the same bytes and reconciles the parent's children list.
"$PY" - "$child" <<'PY'
import os, sys
import rados, rbd
pool, name = sys.argv[1].split("/")
with rados.Rados(conffile=os.environ["CEPH_CONF"]) as c, c.open_ioctx(pool) as io, rbd.Image(io, name) as img:
    img.flatten()
    try:
        img.parent_info()
        raise SystemExit("still has a parent after flatten")
    except rbd.ImageNotFound:
        pass
print("stock flatten: ok")
PY
rbd-ext export "$child" - | cmp - "$WU_TMP/model"
test -z "$(rbd-ext children "$parent" 2>/dev/null)"
rbd-ext rm "$parent"
rbd-ext export "$child" - | cmp - "$WU_TMP/model"
echo "stock_interop: ok"
