#!/usr/bin/env bash
# prior-design.rst "Manual Test Procedures for S3 Back-fill" (tests 1, 2, 3, 5 and 6) as
# checks, against the cluster's radosgw:
#  1/6. a raw image published to S3 backs an (empty) parent; a child's copy-up write and its
#       reads fetch the needed objects (ranged GETs) and write them back into the parent;
#       the child equals the published bytes plus its write; `s3 show` never prints secrets;
#  2.   three children read the same objects at once: each object is fetched from S3 once
#       (`rbd-ext stats`: fills == objects);
#  3.   an unreachable endpoint fails with a clear error and leaves no object behind;
#  5.   an incomplete configuration is refused up front (usage error, nothing created);
#  plus: `hydrate` fills the whole parent (every non-zero object, once);
#  plus: stock librbd refuses S3-backed images (compat 3) instead of reading zeros.
# Needs `rbd-ext s3` and a cluster started with --rgw (qa/suites/rbd-ext/s3).
WU=s3_backfill
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.bash"

rbd-ext s3 attach --help >/dev/null 2>&1 || wu_skip "needs rbd-ext s3 attach (S3-backed parents)"
[[ -n ${RBD_EXT_S3_ENDPOINT:-} && -r ${RBD_EXT_S3_SECRET_FILE:-/nonexistent} ]] ||
    wu_skip "needs radosgw: a cluster from qa/cluster up --rgw (RBD_EXT_S3_ENDPOINT unset); run qa/run rbd-ext/s3"

ep=$RBD_EXT_S3_ENDPOINT
creds=(--region "$RBD_EXT_S3_REGION" --access-key "$RBD_EXT_S3_ACCESS_KEY" --secret-key-file "$RBD_EXT_S3_SECRET_FILE")
bucket=wu-s3-$$-$RANDOM
# Fails if FILE contains the S3 secret (read here, never put on a command line or traced).
no_secret() {
    "$PY" -c 'import sys; s = open(sys.argv[1]).read().strip(); sys.exit(1 if s in open(sys.argv[2]).read() else 0)' "$RBD_EXT_S3_SECRET_FILE" "$1"
}
trap 'rc=$?; ceph config-key rm "rbd-ext/s3/$bucket-$RBD_EXT_S3_ACCESS_KEY" >/dev/null 2>&1; (exit $rc); wu_cleanup' EXIT

# 10 MiB + a partial object of random data, one all-zero object in the middle.
head -c $((4 << 20)) /dev/urandom >"$WU_TMP/img.raw"
head -c $((4 << 20)) /dev/zero >>"$WU_TMP/img.raw"
head -c $((2 << 20)) /dev/urandom >>"$WU_TMP/img.raw"
rbd-ext s3 publish "$WU_TMP/img.raw" "s3://$bucket/images/test.raw" --endpoint "$ep" "${creds[@]}" --create-bucket | tee "$WU_TMP/pub"
grep -q "in 3 objects" "$WU_TMP/pub"

# Test 1/6: attach, show, verify.
wu_image parent rbd s3_parent
rbd-ext s3 attach "$parent" --endpoint "$ep" --bucket "$bucket" --key images/test.raw "${creds[@]}"
rbd-ext s3 show "$parent" | tee "$WU_TMP/show"
no_secret "$WU_TMP/show"
grep -q "config://" "$WU_TMP/show"
rbd-ext s3 verify "$parent"
parent_prefix=$(rbd-ext info --format json "$parent" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["block_name_prefix"])')
# The header (stock `rbd image-meta` refuses to open an S3-backed image) holds only a
# reference to the secret.
rados -p rbd listomapvals "rbd_header.${parent_prefix#rbd_data.}" >"$WU_TMP/meta"
no_secret "$WU_TMP/meta"
grep -q "config://" "$WU_TMP/meta"
test "$(rados -p rbd ls | grep -c "^$parent_prefix\." || true)" -eq 0

wu_image c1 rbd s3_child1
rbd-ext clone-standalone "$parent" "$c1"
cp "$WU_TMP/img.raw" "$WU_TMP/c1.model"
echo "test write" >"$WU_TMP/w"
write_both "$c1" 100 "$WU_TMP/w" "$WU_TMP/c1.model"
# The copy-up fetched object 0 into the parent.
rados -p rbd stat "$parent_prefix.0000000000000000"
rbd-ext export "$c1" - | cmp - "$WU_TMP/c1.model"
rbd-ext export "$parent" - | cmp - "$WU_TMP/img.raw"
# Stock librbd fails closed on S3-backed images (compat-3 parent record).
expect_fail rbd info "$c1"
expect_fail rbd export --no-progress "$parent" -
# hydrate fetches the rest: objects 0 and 2 are in RADOS, the all-zero object 1 is not.
rbd-ext hydrate "$parent"
rados -p rbd stat "$parent_prefix.0000000000000002"
rbd-ext export "$parent" - | cmp - "$WU_TMP/img.raw"

# Test 2: three more children read everything at once; every object came from S3 once
# (object 1 is all zero and never fetched).
wu_image p2 rbd s3_parent2
rbd-ext s3 attach "$p2" --endpoint "$ep" --bucket "$bucket" --key images/test.raw "${creds[@]}"
wu_image k1 rbd s3_k1
wu_image k2 rbd2 s3_k2
wu_image k3 rbd s3_k3
pids=()
for k in "$k1" "$k2" "$k3"; do rbd-ext clone-standalone "$p2" "$k"; done
for k in "$k1" "$k2" "$k3"; do
    rbd-ext export "$k" "$WU_TMP/${k//\//_}.out" &
    pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done
for k in "$k1" "$k2" "$k3"; do cmp "$WU_TMP/${k//\//_}.out" "$WU_TMP/img.raw"; done
rbd-ext stats --format json "$p2" | tee "$WU_TMP/stats.json"
"$PY" - "$WU_TMP/stats.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
assert s["fills"] == 2, s           # objects 0 and 2; object 1 is a hole
assert s.get("fill_failures", 0) == 0, s
PY

# Test 3: an endpoint nobody listens on: a clear error, nothing created or written.
wu_image bad rbd s3_bad
set +e
rbd-ext s3 attach "$bad" --endpoint http://127.0.0.1:9 --bucket "$bucket" --key images/test.raw "${creds[@]}" --timeout-ms 2000 --retries 0 2>"$WU_TMP/err"
rc=$?
set -e
cat "$WU_TMP/err" >&2
if ((rc == 0)); then
    # Attach may not probe the endpoint; then the first read must fail cleanly.
    wu_image badc rbd s3_bad_child
    rbd-ext clone-standalone "$bad" "$badc"
    expect_fail rbd-ext read "$badc" --offset 0 --length 4096
    bad_prefix=$(rbd-ext info --format json "$bad" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["block_name_prefix"])')
    test "$(rados -p rbd ls | grep -c "^$bad_prefix\." || true)" -eq 0
fi
grep -q "127.0.0.1:9" "$WU_TMP/err"
grep -q "^rbd-ext: " "$WU_TMP/err"

# Test 5: incomplete configuration is a usage error; an inline secret is refused.
wu_image inv rbd s3_invalid
set +e
rbd-ext s3 attach "$inv" --endpoint "$ep" --key images/test.raw "${creds[@]}" 2>"$WU_TMP/err"
rc=$?
set -e
test "$rc" -eq 2
expect_fail rbd info "$inv"
rbd-ext rm "$c1"
echo "s3_backfill: ok"
