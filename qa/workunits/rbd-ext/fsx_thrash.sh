#!/usr/bin/env bash
# fsx-style I/O through the rbd-ext CLI while OSDs are killed (SIGKILL) and restarted under
# it. Two standalone children of one parent take random unaligned writes and reads, each
# checked against a model file; one child is flattened half-way through. At the end every
# image equals its model (through rbd-ext and stock rbd), no lock or watch is left, the
# unflattened child's clone map checks clean, the parent lists exactly that child, and
# every PG serves I/O again.
#
# Needs a cluster that survives kill -9 with data redundancy: >= 3 bluestore OSDs, pool
# size >= 2 (qa/suites/rbd-ext/thrash: `qa/cluster up --osds 3 --objectstore bluestore
# --size 2`); skips otherwise. Knobs: FSX_SECONDS (default 120) of I/O, FSX_SEED,
# FSX_OP_TIMEOUT (default 180 s: one CLI call longer than that counts as stuck).
WU=fsx_thrash
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.bash"

QA_CLUSTER_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
QA_CLUSTER=$QA_CLUSTER_DIR/cluster
[[ -n ${RBD_EXT_CLUSTER_NAME:-} ]] || wu_skip "needs a qa/cluster cluster (RBD_EXT_CLUSTER_NAME) with 3 bluestore OSDs and pool size 2: qa/run rbd-ext/thrash"
n_osds=$(ceph osd ls | wc -l)
store=$(ceph osd metadata 0 --format json | "$PY" -c 'import json,sys; print(json.load(sys.stdin).get("osd_objectstore", "?"))')
pool_size=$(ceph osd pool get rbd size --format json | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["size"])')
if ((n_osds < 3)) || [[ $store != bluestore ]] || ((pool_size < 2)); then
    wu_skip "needs >= 3 bluestore OSDs and pool size >= 2 (have $n_osds x $store, size $pool_size): qa/run rbd-ext/thrash"
fi

seconds=${FSX_SECONDS:-120}
seed=${FSX_SEED:-$$}
op_timeout=${FSX_OP_TIMEOUT:-180}
RANDOM=$seed
echo "fsx_thrash: seed $seed, $seconds s of I/O, $n_osds OSDs"
set +x # thousands of lines otherwise; every op is logged below instead

cl() { "$QA_CLUSTER" "$@" --name "$RBD_EXT_CLUSTER_NAME"; }
# One CLI call, bounded: a call that hangs longer than op_timeout fails the run.
run() { timeout "$op_timeout" "$@"; }
log() { printf '%(%T)T %s\n' -1 "$*"; }
rand() { echo $(( (RANDOM * 32768 + RANDOM) % $1 )); }

wu_image parent rbd parent
wu_image ca rbd child-a
wu_image cb rbd2 child-b
size=$((64 * 1024 * 1024 + 12345)) # 16 whole objects and a partial 17th
head -c "$size" /dev/urandom >"$WU_TMP/parent.raw"
rbd import --no-progress --image-feature layering,exclusive-lock,object-map,fast-diff "$WU_TMP/parent.raw" "$parent"
rbd-ext clone-standalone "$parent" "$ca"
rbd-ext clone-standalone "$parent" "$cb"
cp "$WU_TMP/parent.raw" "$WU_TMP/a.model"
cp "$WU_TMP/parent.raw" "$WU_TMP/b.model"

# ---- the thrasher: one OSD down at a time, restarted before the next is killed (so with
# size 2 every PG keeps a copy; bluestore keeps what was acknowledged across kill -9).
stop_file=$WU_TMP/thrash.stop
down_file=$WU_TMP/thrash.down
thrash() {
    local osd kills=0
    while [[ ! -e $stop_file ]]; do
        sleep $((2 + RANDOM % 4))
        [[ -e $stop_file ]] && break
        osd=$((RANDOM % n_osds))
        echo "$osd" >"$down_file"
        log "thrash: kill osd.$osd"
        cl kill-osd "$osd" 2>&1
        sleep $((1 + RANDOM % 4))
        log "thrash: restart osd.$osd"
        cl restart-osd "$osd" 2>&1 || { log "thrash: restart of osd.$osd failed"; return 1; }
        rm -f "$down_file"
        kills=$((kills + 1))
    done
    log "thrash: stopped after $kills kill/restart cycles"
    echo "$kills" >"$WU_TMP/thrash.kills"
}
thrash >"$WU_TMP/thrash.log" 2>&1 &
thrasher=$!
stop_thrasher() {
    [[ -n ${thrasher:-} ]] || return 0
    touch "$stop_file"
    wait "$thrasher" || { echo "thrasher failed:" >&2; cat "$WU_TMP/thrash.log" >&2; thrasher=; return 1; }
    thrasher=
    if [[ -e $down_file ]]; then cl restart-osd "$(cat "$down_file")"; fi
}
# On any exit: stop the thrasher and bring every OSD back before the images are removed.
trap 'rc=$?; stop_thrasher || true; (exit $rc); wu_cleanup' EXIT

# ---- fsx loop
writes=0 reads=0 flattened=0 stock_reads=0
start=$(date +%s)
deadline=$((start + seconds))
check_read() { # IMAGE MODEL OFF LEN
    run rbd-ext read "$1" --offset "$3" --length "$4" --output "$WU_TMP/got"
    dd if="$2" of="$WU_TMP/want" bs=1M iflag=skip_bytes,count_bytes skip="$3" count="$4" status=none
    cmp "$WU_TMP/got" "$WU_TMP/want" || { log "MISMATCH: $1 offset $3 length $4"; return 1; }
}
while (($(date +%s) < deadline)); do
    if ((RANDOM % 2)); then img=$ca model=$WU_TMP/a.model; else img=$cb model=$WU_TMP/b.model; fi
    case $((RANDOM % 10)) in
    0 | 1 | 2 | 3 | 4) # write: mostly small and unaligned, sometimes whole objects
        case $((RANDOM % 4)) in
        0) len=$((1 + RANDOM % 512)) ;;
        1) len=$((4096 * (1 + RANDOM % 16))) ;;
        2) len=$((1 + $(rand 400000))) ;;
        3) len=$((4 * 1024 * 1024)) ;;
        esac
        off=$(rand $((size - len)))
        ((len == 4194304)) && off=$((off / len * len))
        head -c "$len" /dev/urandom >"$WU_TMP/w"
        log "write $img $off+$len"
        run rbd-ext write "$img" --offset "$off" --input "$WU_TMP/w"
        dd if="$WU_TMP/w" of="$model" bs=1M seek="$off" oflag=seek_bytes conv=notrunc status=none
        writes=$((writes + 1))
        ;;
    5 | 6 | 7 | 8) # read a random range (maybe across objects) and compare
        len=$((1 + $(rand 6000000)))
        off=$(rand $((size - len)))
        log "read $img $off+$len"
        check_read "$img" "$model" "$off" "$len"
        reads=$((reads + 1))
        ;;
    9) # stock librbd reads the whole image (read-through and copied-up objects)
        log "stock export $img"
        run rbd export --no-progress "$img" - | cmp - "$model" || { log "MISMATCH: stock export of $img"; exit 1; }
        stock_reads=$((stock_reads + 1))
        ;;
    esac
    # Half-way: flatten child a under the thrashing.
    if ((flattened == 0 && $(date +%s) >= start + seconds / 2)); then
        log "flatten $ca"
        run rbd-ext flatten "$ca"
        flattened=1
    fi
done
log "I/O done: $writes writes, $reads reads, $stock_reads stock exports"
stop_thrasher
kills=$(cat "$WU_TMP/thrash.kills")
cat "$WU_TMP/thrash.log"
set -x

# ---- final checks, all OSDs up
((flattened == 1))
ceph osd stat --format json | "$PY" -c 'import json,sys; d=json.load(sys.stdin); assert d["num_up_osds"] == d["num_osds"], d'
rbd-ext export "$ca" - | cmp - "$WU_TMP/a.model"
rbd-ext export "$cb" - | cmp - "$WU_TMP/b.model"
rbd export --no-progress "$ca" - | cmp - "$WU_TMP/a.model"
rbd export --no-progress "$cb" - | cmp - "$WU_TMP/b.model"
rbd-ext export "$parent" - | cmp - "$WU_TMP/parent.raw"
test -z "$(stock_parent_of "$ca")"
test "$(stock_parent_of "$cb")" = "$parent@"
test "$(rbd-ext children "$parent")" = "$cb"
for img in "$parent" "$ca" "$cb"; do
    test -z "$(rbd-ext lock ls "$img")"
    rbd status --format json "$img" | "$PY" -c 'import json,sys; w=json.load(sys.stdin)["watchers"]; assert not w, w'
done
rbd-ext clone-map check "$cb"
rbd object-map check --no-progress "$ca"
rbd object-map check --no-progress "$cb"
# Nothing stuck in the cluster: every PG of every pool serves I/O again (there is no mgr,
# so PG states are not reported; listing every object visits every PG).
timeout 60 "$PY" "$QA_CLUSTER_DIR/lib/cephctl.py" --conf "$CEPH_CONF" wait-pools rbd rbd2
echo "fsx_thrash: ok ($writes writes, $reads reads, $stock_reads stock exports, 1 flatten, $kills OSD kill/restart cycles in $(($(date +%s) - start)) s, seed $seed)"
