#!/usr/bin/env bash
# The plugin as any librados user sees it: stock python3-rados calls rbd_ext methods.
set -euxo pipefail
PY=${RBD_EXT_PY:-/usr/bin/python3} # qa/run --release R: R's python3-rados, in its chroot
"$PY" - <<'PY'
import errno, os, rados
c = rados.Rados(conffile=os.environ["CEPH_CONF"])
c.connect()
io = c.open_ioctx("rbd")
obj = "workunit-plugin-smoke-%d" % os.getpid()
io.write_full(obj, b"")
# Read methods return (output length, output) through the stock binding.
n, out = io.execute(obj, "rbd_ext", "get_version", b"")
ln = int.from_bytes(out[:4], "little")
assert n == 4 + ln and ln > 0, (n, out)
print("version", out[4:].decode())
# Malformed input to a write method: EINVAL, not a crash.
try:
    io.execute(obj, "rbd_ext", "ping", b"\x01\x01\xff\xff\xff\xff")
    raise SystemExit("malformed ping was accepted")
except rados.InvalidArgumentError:
    pass
io.remove_object(obj)
PY
# The OSD is still up.
ceph osd stat --format json | "$PY" -c 'import json,sys; d=json.load(sys.stdin); assert d["num_up_osds"] == d["num_osds"] > 0, d'
