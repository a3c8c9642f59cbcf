#!/usr/bin/env bash
# Snapshots of a standalone child (README "Snapshots of standalone children"), asserted with
# the stock rbd and python3-rbd of the release under test (qa/run --release R puts R's tools
# on PATH). Every snapshot read is compared byte for byte with a model computed here: the
# parent's bytes with the child's writes up to the snapshot (a stock snapshot of a child
# without the guard reads zeros wherever the child had not written).
#   1. stock `rbd snap create` of an idle child: refused, (122) Disk quota exceeded; `rbd info` works
#   2. `rbd-ext snap create child@s1`: `rbd export`/`rbd diff` of it read the parent; later
#      child writes (also copy-ups) leave it unchanged
#   3. `rbd export-diff --from-snap s1 child@s2` replayed (`rbd import-diff`) on a copy of s1
#   4. Nova's direct snapshot: protect, `rbd clone` into rbd2, `rbd flatten`; then clone,
#      snapshots and children removed (one child by stock `rbd rm`) and the parent's
#      protection lifted
#   5. python3-rbd `Image.create_snap`: DiskQuotaExceeded (errno EDQUOT)
#   6. stock `rbd snap create` while `rbd-ext nbd serve` owns the exclusive lock: forwarded to
#      it, made, reads right; the guard still refuses stock once the owner is gone
# The first mismatch stops the run with a `snapshots: MISMATCH ...` line.
WU=snapshots
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.bash"

# "ceph version 18.2.7 (<sha>) reef (stable)": the release is the 5th word.
RELEASE=$(rbd --version | awk '{print $5}')
OBJ=$((1 << 20))
EDQUOT=122
EDQUOT_TEXT="rbd: failed to create snapshot: (122) Disk quota exceeded"

mismatch() {
    { set +x; } 2>/dev/null
    echo "snapshots: MISMATCH (ceph $RELEASE): $*" >&2
    exit 1
}

# same LABEL FILE MODEL: FILE must equal MODEL; else names the 1 MiB objects that differ
# and whether they read zeros.
same() {
    local i n got want zeros=0 bad=()
    cmp -s "$2" "$3" && return 0
    { set +x; } 2>/dev/null
    n=$(( ($(stat -c %s "$3") + OBJ - 1) / OBJ ))
    [ "$(stat -c %s "$2")" = "$(stat -c %s "$3")" ] || echo "snapshots: $1: size $(stat -c %s "$2"), model $(stat -c %s "$3")" >&2
    for ((i = 0; i < n; i++)); do
        got=$(dd if="$2" bs="$OBJ" skip="$i" count=1 status=none | md5sum)
        want=$(dd if="$3" bs="$OBJ" skip="$i" count=1 status=none | md5sum)
        [ "$got" = "$want" ] && continue
        bad+=("$i")
        if dd if="$2" bs="$OBJ" skip="$i" count=1 status=none | tr -d '\0' | cmp -s - /dev/null; then zeros=$((zeros + 1)); fi
    done
    mismatch "$1: $(cmp "$2" "$3" 2>&1 | head -n1); objects differing: ${bad[*]:-none} of $n (${zeros} of them read zeros)"
}

# export_is LABEL SPEC MODEL: stock `rbd export SPEC` equals MODEL.
export_is() {
    rm -f "$WU_TMP/got"
    rbd export --no-progress "$2" "$WU_TMP/got" || mismatch "$1: rbd export $2 failed"
    same "$1 (rbd export $2)" "$WU_TMP/got" "$3"
}

# refused LABEL CODE TEXT CMD...: CMD must exit with status CODE and print TEXT.
refused() {
    local label=$1 code=$2 text=$3 rc=0
    shift 3
    "$@" >"$WU_TMP/out" 2>&1 || rc=$?
    sed 's/^/    /' "$WU_TMP/out" >&2
    if [ "$rc" -ne "$code" ] || ! grep -qF "$text" "$WU_TMP/out"; then
        mismatch "$label: expected exit $code and \"$text\", got exit $rc: $(tail -n2 "$WU_TMP/out" | tr '\n' ' ')"
    fi
}

user_snaps() { # IMAGE: the names of its user snapshots (stock `rbd snap ls`), space-separated
    rbd snap ls --format json "$1" | "$PY" -c 'import json,sys; print(" ".join(s["name"] for s in json.load(sys.stdin)))'
}

# Row 6's server: stopped (and waited for) before the images are removed at exit.
OWNER_PID=""
stop_owner() {
    local rc=0
    [ -n "$OWNER_PID" ] || return 0
    kill -TERM "$OWNER_PID" 2>/dev/null || true
    wait "$OWNER_PID" || rc=$?
    OWNER_PID=""
    return "$rc"
}
on_exit() {
    local rc=$?
    { set +x; } 2>/dev/null
    set +e
    stop_owner >/dev/null 2>&1
    (exit "$rc") # wu_cleanup exits with the status it is called with
    wu_cleanup
}
trap on_exit EXIT

wu_image parent rbd parent
wu_image child rbd child
wu_image child2 rbd child2
wu_image copy rbd copy
wu_image glance rbd2 glance

# A 16 MiB parent of 1 MiB objects, random bytes (no object reads zeros by chance).
head -c $((16 * OBJ)) /dev/urandom >"$WU_TMP/parent.raw"
rbd import --no-progress --object-size 1M "$WU_TMP/parent.raw" "$parent"
rbd-ext clone-standalone "$parent" "$child"
test "$(stock_parent_of "$child")" = "$parent@" || mismatch "stock rbd info $child: parent $(stock_parent_of "$child"), expected $parent@"
cp "$WU_TMP/parent.raw" "$WU_TMP/head.model"

# ---- 1. stock snap create of an idle child: refused; the child still opens for stock.
refused "row 1: stock rbd snap create $child@x" "$EDQUOT" "$EDQUOT_TEXT" rbd snap create "$child@x"
rbd info "$child" >"$WU_TMP/info" || mismatch "row 1: stock rbd info $child failed after the refusal"
cat "$WU_TMP/info"
test -z "$(user_snaps "$child")" || mismatch "row 1: $child has user snapshots after the refusal: $(user_snaps "$child")"
export_is "row 1: HEAD" "$child" "$WU_TMP/head.model"

# ---- 2. rbd-ext snap create after a few bytes into one object (object 3).
head -c 1000 /dev/urandom >"$WU_TMP/w1"
write_both "$child" $((3 * OBJ + 12345)) "$WU_TMP/w1" "$WU_TMP/head.model"
rbd-ext snap create "$child@s1"
cp "$WU_TMP/head.model" "$WU_TMP/s1.model"
test "$(user_snaps "$child")" = s1 || mismatch "row 2: user snapshots of $child: $(user_snaps "$child"), expected s1"
export_is "row 2: s1" "$child@s1" "$WU_TMP/s1.model"
cp "$WU_TMP/got" "$WU_TMP/s1.export"
# The diff of s1 covers the whole parent (all 16 objects hold data): a snapshot without the
# parent would list only object 3.
rbd diff --format json "$child@s1" >"$WU_TMP/diff.json" || mismatch "row 2: rbd diff $child@s1 failed"
covered=$("$PY" -c 'import json,sys; print(sum(e["length"] for e in json.load(open(sys.argv[1]))))' "$WU_TMP/diff.json")
test "$covered" -eq $((16 * OBJ)) || mismatch "row 2: rbd diff $child@s1 covers $covered bytes, expected $((16 * OBJ))"
# Writes after s1: into object 3 again, and copy-ups of objects 9 and 10 (one write across
# their boundary); s1 does not change, HEAD does.
head -c 3000 /dev/urandom >"$WU_TMP/w2"
write_both "$child" $((3 * OBJ + 11000)) "$WU_TMP/w2" "$WU_TMP/head.model"
head -c 5000 /dev/urandom >"$WU_TMP/w3"
write_both "$child" $((10 * OBJ - 2000)) "$WU_TMP/w3" "$WU_TMP/head.model"
export_is "row 2: s1 after later writes" "$child@s1" "$WU_TMP/s1.model"
export_is "row 2: HEAD after the writes" "$child" "$WU_TMP/head.model"

# ---- 3. export-diff s1..s2, replayed onto a copy of s1 (a plain image: stock snapshots).
rbd-ext snap create "$child@s2"
cp "$WU_TMP/head.model" "$WU_TMP/s2.model"
export_is "row 3: s2" "$child@s2" "$WU_TMP/s2.model"
rbd export-diff --no-progress --from-snap s1 "$child@s2" "$WU_TMP/d.diff" || mismatch "row 3: rbd export-diff --from-snap s1 $child@s2 failed"
rbd import --no-progress --object-size 1M "$WU_TMP/s1.export" "$copy"
rbd snap create "$copy@s1"
rbd import-diff --no-progress "$WU_TMP/d.diff" "$copy" || mismatch "row 3: rbd import-diff onto $copy failed"
export_is "row 3: copy + diff s1..s2" "$copy" "$WU_TMP/s2.model"
export_is "row 3: copy@s2 (made by import-diff)" "$copy@s2" "$WU_TMP/s2.model"
export_is "row 3: s1 after export-diff" "$child@s1" "$WU_TMP/s1.model"

# ---- 5. python3-rbd create_snap: DiskQuotaExceeded.
if "$PY" -c 'import rbd' 2>/dev/null; then
    "$PY" - "$child" <<'PY' || mismatch "row 5: python3-rbd Image.create_snap on $child did not fail with EDQUOT (above)"
import errno, os, sys
import rados, rbd
pool, name = sys.argv[1].split("/")
with rados.Rados(conffile=os.environ["CEPH_CONF"]) as c, c.open_ioctx(pool) as io, rbd.Image(io, name) as img:
    try:
        img.create_snap("p")
    except rbd.Error as e:
        print("create_snap: %s errno %s: %s" % (type(e).__name__, getattr(e, "errno", None), e))
        if getattr(e, "errno", None) != errno.EDQUOT:
            sys.exit("expected errno EDQUOT (%d)" % errno.EDQUOT)
    else:
        sys.exit("create_snap succeeded")
    names = [s["name"] for s in img.list_snaps()]
    if "p" in names:
        sys.exit("snapshot p exists after the refusal: %s" % names)
PY
else
    echo "snapshots: row 5 (python3-rbd create_snap) not asserted: $PY has no rbd module (python3-rbd not installed)"
fi

# ---- 6. stock snap create forwarded to an rbd-ext lock owner (nbd serve).
head -c 2000 /dev/urandom >"$WU_TMP/w4"
write_both "$child" $((12 * OBJ + 1)) "$WU_TMP/w4" "$WU_TMP/head.model"
cp "$WU_TMP/head.model" "$WU_TMP/owner.model"
rbd-ext nbd serve "$child" --socket "$WU_TMP/nbd.sock" </dev/null >"$WU_TMP/nbd.uri" 2>"$WU_TMP/nbd.log" &
OWNER_PID=$!
for ((i = 0; i < 600; i++)); do
    [ -s "$WU_TMP/nbd.uri" ] && break
    kill -0 "$OWNER_PID" 2>/dev/null || { cat "$WU_TMP/nbd.log" >&2; mismatch "row 6: rbd-ext nbd serve $child exited before serving"; }
    sleep 0.1
done
[ -s "$WU_TMP/nbd.uri" ] || { cat "$WU_TMP/nbd.log" >&2; mismatch "row 6: rbd-ext nbd serve $child printed no URI within 60 s"; }
cat "$WU_TMP/nbd.uri" "$WU_TMP/nbd.log"
test -n "$(rbd lock ls "$child")" || mismatch "row 6: the server holds no lock on $child"
rbd snap create "$child@owner" || mismatch "row 6: stock rbd snap create $child@owner failed while rbd-ext nbd serve owns the lock"
export_is "row 6: owner (made by the rbd-ext lock owner)" "$child@owner" "$WU_TMP/owner.model"
stop_owner || { cat "$WU_TMP/nbd.log" >&2; mismatch "row 6: rbd-ext nbd serve did not stop cleanly"; }
cat "$WU_TMP/nbd.log"
test -z "$(rbd lock ls "$child")" || mismatch "row 6: a lock is left on $child after the server stopped"
export_is "row 6: owner after the server stopped" "$child@owner" "$WU_TMP/owner.model"
export_is "row 6: HEAD" "$child" "$WU_TMP/head.model"
# The guard is armed again: with no owner, stock is refused as in row 1.
refused "row 6: stock rbd snap create $child@after with no owner" "$EDQUOT" "$EDQUOT_TEXT" rbd snap create "$child@after"
test "$(user_snaps "$child")" = "s1 s2 owner" || mismatch "row 6: user snapshots of $child: $(user_snaps "$child"), expected s1 s2 owner"

# ---- 4. Nova's direct snapshot: protect, clone into another pool, flatten; then remove.
rbd snap protect "$child@s1"
rbd clone "$child@s1" "$glance" || mismatch "row 4: rbd clone $child@s1 $glance failed"
test "$(stock_parent_of "$glance")" = "$child@s1" || mismatch "row 4: parent of $glance: $(stock_parent_of "$glance")"
rbd flatten --no-progress "$glance" || mismatch "row 4: rbd flatten $glance failed"
test -z "$(stock_parent_of "$glance")" || mismatch "row 4: $glance still has a parent after flatten"
export_is "row 4: glance (clone of s1, flattened)" "$glance" "$WU_TMP/s1.model"
rbd rm --no-progress "$glance"
rbd snap unprotect "$child@s1"
rbd snap purge --no-progress "$child"
test -z "$(user_snaps "$child")" || mismatch "row 4: user snapshots of $child after purge: $(user_snaps "$child")"
export_is "row 4: HEAD after purge" "$child" "$WU_TMP/head.model"
# A second child with an rbd-ext snapshot and no write: the snapshot is all parent; stock
# `rbd rm` removes it with its guard after `rbd snap purge`.
rbd-ext clone-standalone "$parent" "$child2"
rbd-ext snap create "$child2@a"
export_is "row 4: child2@a (no writes)" "$child2@a" "$WU_TMP/parent.raw"
rbd snap purge --no-progress "$child2"
rbd rm --no-progress "$child2" || mismatch "row 4: stock rbd rm $child2 failed"
if rbd info "$child2" >/dev/null 2>&1; then mismatch "row 4: $child2 still exists after stock rbd rm"; fi
# Stock rm leaves child2's entry in the parent's children (README "After stock tools"):
# `rbd-ext children` drops it and lists the one child left.
kids=$(rbd-ext children "$parent")
test "$kids" = "$child" || mismatch "row 4: rbd-ext children $parent after stock rm of $child2: '$kids', expected $child"
child_id=$(rbd info --format json "$child" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
rbd-ext rm "$child"
if rbd info "$child" >/dev/null 2>&1; then mismatch "row 4: $child still exists after rbd-ext rm"; fi
# Clones of purged snapshots go with the OSD's asynchronous snap trimming: wait for it.
for _ in $(seq 60); do
    left=$(rados -p "${child%%/*}" ls | grep -c "$child_id" || true)
    [ "$left" = 0 ] && break
    sleep 0.5
done
test "$left" = 0 || mismatch "row 4: $left object(s) of $child (id $child_id) left after rbd-ext rm: $(rados -p "${child%%/*}" ls | grep "$child_id" | tr '\n' ' ')"
prot=$(rbd-ext protection "$parent")
test "$prot" = none || mismatch "row 4: rbd-ext protection $parent prints '$prot' once its children are gone, expected none"
export_is "row 4: parent" "$parent" "$WU_TMP/parent.raw"
rbd-ext rm "$parent" || mismatch "row 4: rbd-ext rm $parent failed"
rbd snap purge --no-progress "$copy"
rbd rm --no-progress "$copy"
for img in "$parent" "$copy" "$glance"; do
    if rbd info "$img" >/dev/null 2>&1; then mismatch "cleanup: $img still exists"; fi
done

set +x
echo "snapshots: ok (ceph $RELEASE)"
