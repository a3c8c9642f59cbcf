#!/usr/bin/env bash
# Issue 16: the parent-protection matrix of README "Parent protection", asserted cell by cell
# with the stock `rbd` (and python3-rbd) of the release under test (qa/run --release R puts
# R's tools on PATH). For each mode (none: no child, the baseline; clones: the default;
# strict) a Glance-like parent P (@gold protected, @gold2 not), a parent Q without snapshots
# (rm and trash mv are not masked by "image has snapshots") and a parent W that a stock client
# holds open for writing while it becomes protected. Afterwards the children read the right
# bytes and the last child's departure restores each parent's header keys exactly.
# A mismatch does not stop the run: every cell is measured, the row is printed, then it fails.
WU=protmatrix
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.bash"

# "ceph version 18.2.7 (<sha>) reef (stable)": the release is the 5th word.
RELEASE=$(rbd --version | awk '{print $5}')

# Expected outcome per cell: `ok`, an errno name (stock rbd exits non-zero and prints
# "(N) ..." for it), or for `writer` the three writes of an already-open client and for
# `landed` which of them reached the parent. Lines: RELEASES MODE CELL EXPECTED, where
# RELEASES is `*` or a comma-separated list; a line naming the release beats a `*` line.
# Pacific 16.2.15, Reef 18.2.7 and Tentacle 20.2.4 measured identical: librbd's gates for
# these operations did not change (README, "Parent protection").
EXPECTATIONS='
* none   info ok
* none   export ok
* none   clone-v1 ok
* none   clone-v2 ok
* none   write ok
* none   shrink ok
* none   rollback ok
* none   snap-create ok
* none   snap-protect ok
* none   trash-mv ok
* none   rm ok
* none   writer ok/ok/ok
* none   landed 1,2,3

* clones info ok
* clones export ok
* clones clone-v1 ok
* clones clone-v2 ok
* clones write EROFS
* clones shrink EROFS
* clones rollback EROFS
* clones snap-create EROFS
* clones snap-protect EROFS
* clones trash-mv EROFS
* clones rm EROFS
* clones writer EROFS/ok/ok
* clones landed 2,3

* strict info ok
* strict export ok
* strict clone-v1 EROFS
* strict clone-v2 EROFS
* strict write EROFS
* strict shrink EROFS
* strict rollback EROFS
* strict snap-create EROFS
* strict snap-protect EROFS
* strict trash-mv ok
* strict rm EROFS
* strict writer ok/EROFS/EROFS
* strict landed 1
'
KNOWN_RELEASES="pacific reef tentacle"
case " $KNOWN_RELEASES " in
    *" $RELEASE "*) ;;
    *) echo "no protection expectations recorded for Ceph '$RELEASE' ($KNOWN_RELEASES): measure it and add them" >&2; exit 1 ;;
esac

expected() { # MODE CELL
    local r m c v best=""
    while read -r r m c v; do
        [ "$m" = "$1" ] && [ "$c" = "$2" ] || continue
        case ",$r," in
            *",$RELEASE,"*) echo "$v"; return ;;
            ",*,") best=$v ;;
        esac
    done <<<"$EXPECTATIONS"
    [ -n "$best" ] || { echo "no expectation for $1 $2" >&2; exit 1; }
    echo "$best"
}

errno_name() { # N
    case $1 in
        2) echo ENOENT ;; 16) echo EBUSY ;; 22) echo EINVAL ;; 30) echo EROFS ;;
        31) echo EMLINK ;; 38) echo ENOSYS ;; 39) echo ENOTEMPTY ;; *) echo "errno$1" ;;
    esac
}

MISMATCHES=0
ROW=()
record() { # MODE CELL GOT
    local want
    { set +x; } 2>/dev/null # the table lookup would flood the trace
    want=$(expected "$1" "$2")
    set -x
    ROW+=("$2=$3")
    if [ "$3" != "$want" ]; then
        echo "MISMATCH ceph $RELEASE, $1, $2: expected $want, got $3" >&2
        MISMATCHES=$((MISMATCHES + 1))
    fi
}

# cell MODE CELL CMD...: runs a stock command and records ok or its errno: the last "(N) "
# it printed (stdout too: `rbd bench` reports there), else its exit status (rbd exits -r).
cell() {
    local mode=$1 name=$2 got n rc=0
    shift 2
    "$@" >"$WU_TMP/err" 2>&1 || rc=$?
    if [ "$rc" -eq 0 ]; then
        got=ok
    else
        n=$(grep -oE '\(([0-9]+)\) [A-Z]' "$WU_TMP/err" | tail -n1 | tr -dc 0-9 || true)
        got=$(errno_name "${n:-$rc}")
        sed 's/^/    /' "$WU_TMP/err" >&2
    fi
    record "$mode" "$name" "$got"
}

# The header keys protection touches, as stored (`absent` when missing): compared before the
# first child and after the last.
header_keys() { # IMAGE
    local id k
    id=$(rbd info --format json "$1" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["id"])')
    for k in features op_features migration rbd_ext_protect; do
        if rados -p "${1%%/*}" getomapval "rbd_header.$id" "$k" "$WU_TMP/key" >/dev/null 2>&1; then
            echo "$k $(od -An -tx1 "$WU_TMP/key" | tr -d ' \n')"
        else
            echo "$k absent"
        fi
    done
}

# Sets LANDED to which of the 4 KiB blocks 1..3 of IMAGE hold the writer's `y` bytes (not
# a $(...) function: errexit does not reach into command substitutions).
landed() { # IMAGE
    local i out=()
    rbd export --no-progress "$1" - >"$WU_TMP/landed.raw"
    for i in 1 2 3; do
        if dd if="$WU_TMP/landed.raw" bs=4096 skip="$i" count=1 status=none | cmp -s - "$WU_TMP/y4k"; then out+=("$i"); fi
    done
    LANDED=$(IFS=,; echo "${out[*]:-none}")
}

# A stock client (python3-rbd) that opens IMAGE for writing and writes once, says `ready`,
# waits for a line, then tries three writes of `y` at 4 KiB, 8 KiB, 12 KiB and prints their
# outcomes as ok/EROFS/....
cat >"$WU_TMP/writer.py" <<'EOF'
import os, sys, rados, rbd
pool, name = sys.argv[1].split('/')
c = rados.Rados(conffile=os.environ['CEPH_CONF'])
c.connect()
io = c.open_ioctx(pool)
img = rbd.Image(io, name)
img.write(b'w' * 4096, 0)
print('ready', flush=True)
sys.stdin.readline()
out = []
for i in (1, 2, 3):
    try:
        img.write(b'y' * 4096, 4096 * i)
        out.append('ok')
    except rbd.ReadOnlyImage:
        out.append('EROFS')
    except Exception as e:
        out.append(type(e).__name__)
img.close()
io.close()
c.shutdown()
print('/'.join(out), flush=True)
EOF
head -c 4096 /dev/zero | tr '\0' y >"$WU_TMP/y4k"

# The parent's data: A at @gold, B (A with its first MiB rewritten by stock bench) at @gold2
# and HEAD.
head -c $((8 << 20)) /dev/urandom >"$WU_TMP/a.raw"

# Stock clones are removed by stock rbd: `rbd-ext rm` (the exit cleanup) leaves a stock
# clone's entry in its parent snapshot's children (v1 rbd_children, v2 clone-parent).
drop_stock_clones() { # IMAGE...
    local k
    for k in "$@"; do
        if rbd info "$k" >/dev/null 2>&1; then rbd rm --no-progress "$k"; fi
    done
}

protect() { # MODE IMAGE CHILD [--force]
    [ "$1" = none ] && return 0
    rbd-ext clone-standalone ${4:-} "$2" "$3"
    [ "$1" = strict ] && rbd-ext protection "$2" --set strict >/dev/null
    test "$(rbd-ext protection "$2")" = "$1"
}

run_mode() { # MODE
    local mode=$1 p q w pc qc wc k1 k2 before_p before_q before_w id line wpid
    ROW=()
    wu_image p rbd "$mode-p"
    wu_image q rbd "$mode-q"
    wu_image w rbd "$mode-w"
    wu_image pc rbd "$mode-pc"
    wu_image qc rbd "$mode-qc"
    wu_image wc rbd "$mode-wc"
    wu_image k1 rbd "$mode-k1"
    wu_image k2 rbd "$mode-k2"

    rm -f "$WU_TMP/b.raw" "$WU_TMP/export.raw"
    rbd import --no-progress "$WU_TMP/a.raw" "$p"
    rbd snap create "$p@gold"
    rbd snap protect "$p@gold"
    rbd bench --io-type write --io-pattern seq --io-size 1M --io-total 1M "$p" >/dev/null
    rbd export --no-progress "$p" "$WU_TMP/b.raw"
    if cmp -s "$WU_TMP/a.raw" "$WU_TMP/b.raw"; then echo "the bench wrote nothing new" >&2; exit 1; fi
    rbd snap create "$p@gold2"
    rbd create --size 8M "$q"
    rbd create --size 8M "$w"
    before_p=$(header_keys "$p")
    before_q=$(header_keys "$q")
    before_w=$(header_keys "$w")

    # W is open for writing before it gets its child (hence --force).
    rm -f "$WU_TMP/to" "$WU_TMP/from"
    mkfifo "$WU_TMP/to" "$WU_TMP/from"
    "$PY" "$WU_TMP/writer.py" "$w" <"$WU_TMP/to" >"$WU_TMP/from" &
    wpid=$!
    exec 7>"$WU_TMP/to" 8<"$WU_TMP/from"
    read -r line <&8
    test "$line" = ready
    protect "$mode" "$p" "$pc"
    protect "$mode" "$q" "$qc"
    protect "$mode" "$w" "$wc" --force
    echo go >&7
    read -r line <&8
    wait "$wpid"
    exec 7>&- 8<&-
    record "$mode" writer "$line"
    landed "$w"
    record "$mode" landed "$LANDED"

    cell "$mode" info rbd info "$p"
    cell "$mode" export rbd export --no-progress "$p" "$WU_TMP/export.raw"
    cmp "$WU_TMP/export.raw" "$WU_TMP/b.raw"
    cell "$mode" clone-v1 rbd clone --rbd-default-clone-format 1 "$p@gold" "$k1"
    cell "$mode" clone-v2 rbd clone --rbd-default-clone-format 2 "$p@gold2" "$k2"
    cell "$mode" write rbd bench --io-type write --io-size 4K --io-total 64K "$p"
    cell "$mode" shrink rbd resize --no-progress --allow-shrink --size 4M "$p"
    cell "$mode" rollback rbd snap rollback --no-progress "$p@gold"
    cell "$mode" snap-create rbd snap create "$p@new"
    cell "$mode" snap-protect rbd snap protect "$p@gold2"
    cell "$mode" trash-mv rbd trash mv "$q"
    # Moved: bring it back (the protection came along) so rm is tried on it too.
    if ! rbd info "$q" >/dev/null 2>&1; then
        id=$(rbd trash ls --format json rbd | "$PY" -c 'import json,sys; print(next(i["id"] for i in json.load(sys.stdin) if i["name"] == sys.argv[1]))' "${q#rbd/}")
        rbd trash restore "rbd/$id"
        [ "$mode" = none ] || test "$(rbd-ext protection "$q")" = "$mode"
    fi
    cell "$mode" rm rbd rm --no-progress "$q"
    set +x
    echo "protection_matrix: ceph $RELEASE, $mode: ${ROW[*]}"
    set -x
    if [ "$mode" = none ]; then
        drop_stock_clones "$k1" "$k2"
        return 0
    fi

    # Whatever the cells allowed, the HEAD the children read is intact and they read it.
    rbd export --no-progress "$p" - | cmp - "$WU_TMP/b.raw"
    rbd export --no-progress "$p@gold" - | cmp - "$WU_TMP/a.raw"
    rbd export --no-progress "$pc" - | cmp - "$WU_TMP/b.raw"
    rbd-ext export "$pc" - | cmp - "$WU_TMP/b.raw"
    if rbd info "$k1" >/dev/null 2>&1; then rbd export --no-progress "$k1" - | cmp - "$WU_TMP/a.raw"; fi
    if rbd info "$k2" >/dev/null 2>&1; then rbd export --no-progress "$k2" - | cmp - "$WU_TMP/b.raw"; fi

    # Stock clones first (a v2 clone adds clone-parent to P's op features while it lives),
    # then the last standalone child: each parent's own keys come back byte for byte, and
    # stock writes work again.
    drop_stock_clones "$k1" "$k2"
    rbd-ext rm "$pc"
    rbd-ext rm "$wc"
    test "$(rbd-ext protection "$p")" = none
    test "$(header_keys "$p")" = "$before_p"
    test "$(header_keys "$w")" = "$before_w"
    if rbd info "$q" >/dev/null 2>&1; then
        rbd-ext rm "$qc"
        test "$(header_keys "$q")" = "$before_q"
    fi
    retry_60s rbd bench --io-type write --io-size 4K --io-total 64K "$p" >/dev/null
}

for mode in none clones strict; do
    run_mode "$mode"
done
if [ "$MISMATCHES" -ne 0 ]; then
    echo "protection_matrix: $MISMATCHES cell(s) differ from the expectations for ceph $RELEASE" >&2
    exit 1
fi
echo "protection_matrix: ok (ceph $RELEASE)"
