/*
 * Drives every function of librbd_ext's C API against live clusters, each with a success
 * and an error case checked for the exact negative errno. Built against the INSTALLED
 * header and pkg-config file and run under LeakSanitizer by tests/capi_live.rs:
 *
 *   cc -fsanitize=address -pthread -o capi_test tests/capi/capi_test.c $(pkg-config --cflags --libs rbd-ext)
 *
 * Environment: CEPH_CONF (the local cluster), RBD_EXT_CAPI_REMOTE_CONF and
 * RBD_EXT_CAPI_REMOTE_KEYRING (a second cluster), RBD_EXT_CAPI_DATA_POOL (an RBD pool), RBD_EXT_S3_ENDPOINT, RBD_EXT_S3_REGION,
 * RBD_EXT_S3_ACCESS_KEY, RBD_EXT_S3_SECRET_FILE (radosgw), RBD_EXT_CAPI_BUCKET (an
 * existing, empty bucket), RBD_EXT_CAPI_VERSION (the expected "major.minor.extra").
 * argv[1] is a unique prefix for image names. Prints "capi_test: ok" and exits 0 on success.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rbd_ext.h>

#define CHECK(cond, ...)                                                     \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "capi_test.c:%d: check failed: %s: ", __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                    \
            fprintf(stderr, "\n");                                           \
            exit(1); /* later checks depend on this one */                   \
        }                                                                    \
    } while (0)

/* A call that must return exactly `want` (0 or a negative errno). */
#define EXPECT(want, call)                                                   \
    do {                                                                     \
        int r_ = (call);                                                     \
        CHECK(r_ == (want), "%s returned %d (%s), expected %d (%s)", #call,  \
              r_, strerror(-r_), (want), strerror(-(want)));                 \
    } while (0)

static const char *env(const char *name) {
    const char *v = getenv(name);
    if (!v || !*v) {
        fprintf(stderr, "capi_test: %s is not set\n", name);
        exit(2);
    }
    return v;
}

struct progress {
    int calls;
    uint64_t last_done, last_total;
    int backwards;
};

static int on_progress(uint64_t done, uint64_t total, void *arg) {
    struct progress *p = arg;
    if (p->calls > 0 && done < p->last_done)
        p->backwards++;
    p->calls++;
    p->last_done = done;
    p->last_total = total;
    return 0;
}

static char *pattern(size_t len, unsigned seed) {
    char *b = malloc(len);
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < len; i++) {
        x ^= x << 13; x ^= x >> 17; x ^= x << 5;
        b[i] = (char)x;
    }
    return b;
}

/* Creates image `name` (format 2, `order`, layering + exclusive lock) holding `data`. */
static void make_image(rados_ioctx_t io, const char *name, const char *data, size_t len, int order) {
    rbd_image_options_t o;
    rbd_image_options_create(&o);
    rbd_image_options_set_uint64(o, RBD_IMAGE_OPTION_ORDER, (uint64_t)order);
    rbd_image_options_set_uint64(o, RBD_IMAGE_OPTION_FEATURES, RBD_FEATURE_LAYERING | RBD_FEATURE_EXCLUSIVE_LOCK);
    EXPECT(0, rbd_create4(io, name, len, o));
    rbd_image_options_destroy(o);
    rbd_image_t img;
    EXPECT(0, rbd_open(io, name, &img, NULL));
    CHECK(rbd_write(img, 0, len, data) == (ssize_t)len, "write %s", name);
    EXPECT(0, rbd_close(img));
}

/* Whether stock librbd reads `name` as exactly `data`. */
static int reads_as(rados_ioctx_t io, const char *name, const char *data, size_t len) {
    rbd_image_t img;
    int r = rbd_open_read_only(io, name, &img, NULL);
    if (r < 0) {
        fprintf(stderr, "capi_test: open %s: %s\n", name, strerror(-r));
        return 0;
    }
    char *buf = malloc(len);
    ssize_t n = rbd_read(img, 0, len, buf);
    int same = n == (ssize_t)len && memcmp(buf, data, len) == 0;
    free(buf);
    rbd_close(img);
    return same;
}

static void image_id(rados_ioctx_t io, const char *name, char *id, size_t len) {
    rbd_image_t img;
    EXPECT(0, rbd_open_read_only(io, name, &img, NULL));
    EXPECT(0, rbd_get_id(img, id, len));
    rbd_close(img);
}

static rados_t cluster_connect(const char *conf) {
    rados_t c;
    EXPECT(0, rados_create(&c, NULL));
    EXPECT(0, rados_conf_read_file(c, conf));
    if (rados_connect(c) < 0) {
        fprintf(stderr, "capi_test: cannot connect with %s\n", conf ? conf : "$CEPH_CONF");
        exit(2);
    }
    return c;
}

static void name(char *out, size_t n, const char *prefix, const char *what) {
    snprintf(out, n, "%s-%s", prefix, what);
}

static void test_version(void) {
    int major = -1, minor = -1, extra = -1;
    rbd_ext_version(&major, &minor, &extra);
    char v[64];
    snprintf(v, sizeof v, "%d.%d.%d", major, minor, extra);
    CHECK(strcmp(v, env("RBD_EXT_CAPI_VERSION")) == 0, "version %s", v);
    /* Its only error case: NULL pointers are skipped, not written. */
    rbd_ext_version(NULL, NULL, NULL);
}

static void test_local(rados_ioctx_t io, const char *prefix) {
    char parent[128], child[128], other[128];
    name(parent, sizeof parent, prefix, "parent");
    name(child, sizeof child, prefix, "child");
    name(other, sizeof other, prefix, "other");
    const size_t len = 3 * 65536 + 1000;
    char *data = pattern(len, 1);
    make_image(io, parent, data, len, 16);

    /* clone-standalone, with librbd image options; a stock reader sees the parent's data. */
    rbd_image_options_t o;
    rbd_image_options_create(&o);
    rbd_image_options_set_uint64(o, RBD_IMAGE_OPTION_FEATURES, RBD_FEATURE_LAYERING | RBD_FEATURE_EXCLUSIVE_LOCK);
    rbd_image_options_set_uint64(o, RBD_IMAGE_OPTION_ORDER, 16);
    EXPECT(0, rbd_ext_clone_standalone(io, parent, io, child, o));
    CHECK(reads_as(io, child, data, len), "clone %s reads as its parent", child);
    EXPECT(-EEXIST, rbd_ext_clone_standalone(io, parent, io, child, o));
    rbd_image_options_set_uint64(o, RBD_IMAGE_OPTION_ORDER, 20);
    EXPECT(-EINVAL, rbd_ext_clone_standalone(io, parent, io, other, o));
    rbd_image_options_destroy(o);
    EXPECT(-ENOENT, rbd_ext_clone_standalone(io, other, io, "never-made", NULL));

    /* A data pool from the options; removing a child detaches it from its parent. */
    const char *data_pool = env("RBD_EXT_CAPI_DATA_POOL");
    char dchild[128];
    name(dchild, sizeof dchild, prefix, "dchild");
    rbd_image_options_create(&o);
    rbd_image_options_set_string(o, RBD_IMAGE_OPTION_DATA_POOL, data_pool);
    EXPECT(0, rbd_ext_clone_standalone(io, parent, io, dchild, o));
    rbd_image_options_destroy(o);
    rbd_image_t img;
    EXPECT(0, rbd_open_read_only(io, dchild, &img, NULL));
    int64_t want = rados_pool_lookup(rados_ioctx_get_cluster(io), data_pool);
    CHECK(want >= 0 && rbd_get_data_pool_id(img) == want, "data pool id %lld, not %lld", (long long)rbd_get_data_pool_id(img), (long long)want);
    rbd_close(img);
    CHECK(reads_as(io, dchild, data, len), "clone %s with a data pool reads as its parent", dchild);
    EXPECT(0, rbd_ext_remove(io, dchild));

    /* list children, librbd's two-call protocol. */
    size_t max = 0;
    EXPECT(-ERANGE, rbd_ext_list_children(io, parent, NULL, &max));
    CHECK(max == 1, "children needed: %zu", max);
    rbd_ext_linked_image_spec_t kids[2];
    max = 2;
    EXPECT(0, rbd_ext_list_children(io, parent, kids, &max));
    CHECK(max == 1, "children: %zu", max);
    if (max == 1) {
        char id[64];
        image_id(io, child, id, sizeof id);
        CHECK(kids[0].pool_id == rados_ioctx_get_id(io), "pool id %lld", (long long)kids[0].pool_id);
        CHECK(strcmp(kids[0].pool_name, "rbd") == 0, "pool %s", kids[0].pool_name);
        CHECK(strcmp(kids[0].pool_namespace, "") == 0, "namespace %s", kids[0].pool_namespace);
        CHECK(strcmp(kids[0].image_name, child) == 0, "name %s", kids[0].image_name);
        CHECK(strcmp(kids[0].image_id, id) == 0, "id %s, not %s", kids[0].image_id, id);
        CHECK(!kids[0].trash, "trash");
        rbd_ext_linked_image_spec_list_cleanup(kids, max);
    }
    max = 2;
    EXPECT(-ENOENT, rbd_ext_list_children(io, other, kids, &max));

    /* get_parent */
    rbd_ext_parent_info_t pi;
    EXPECT(0, rbd_ext_get_parent(io, child, &pi));
    CHECK(pi.parent_type == RBD_EXT_PARENT_TYPE_STANDALONE, "type %d", pi.parent_type);
    CHECK(strcmp(pi.pool_name, "rbd") == 0 && strcmp(pi.image_name, parent) == 0, "parent %s/%s", pi.pool_name, pi.image_name);
    CHECK(pi.pool_id == rados_ioctx_get_id(io), "pool id");
    CHECK(pi.overlap == len, "overlap %llu", (unsigned long long)pi.overlap);
    CHECK(pi.snap_id == (uint64_t)-2 && strcmp(pi.snap_name, "") == 0, "snap %llu", (unsigned long long)pi.snap_id);
    CHECK(strcmp(pi.source, "") == 0, "source %s", pi.source);
    rbd_ext_parent_info_cleanup(&pi);
    EXPECT(-ENOENT, rbd_ext_get_parent(io, parent, &pi));

    /* remove: the parent is protected while it has a child. */
    EXPECT(-EBUSY, rbd_ext_remove(io, parent));

    /* flatten with progress; then the child stands alone and the parent can go. */
    struct progress p = {0};
    EXPECT(0, rbd_ext_flatten_with_progress(io, child, on_progress, &p));
    CHECK(p.calls >= 2 && p.last_total == 4 && p.last_done == p.last_total && !p.backwards,
          "progress: %d calls, last %llu/%llu", p.calls, (unsigned long long)p.last_done, (unsigned long long)p.last_total);
    EXPECT(-ENOENT, rbd_ext_get_parent(io, child, &pi));
    max = 0;
    EXPECT(0, rbd_ext_list_children(io, parent, NULL, &max));
    CHECK(max == 0, "children after flatten: %zu", max);
    EXPECT(-EINVAL, rbd_ext_flatten_with_progress(io, parent, on_progress, &p)); /* no parent */
    EXPECT(0, rbd_ext_remove(io, parent));
    CHECK(reads_as(io, child, data, len), "flattened %s keeps the data", child);
    EXPECT(0, rbd_ext_remove(io, child));
    EXPECT(-ENOENT, rbd_ext_remove(io, child));
    free(data);
}

/* Whether stock librbd reads `len` bytes at `off` of `name@snap` as exactly `want`. */
static int snap_reads_as(rados_ioctx_t io, const char *name, const char *snap, uint64_t off, const char *want, size_t len) {
    rbd_image_t img;
    int r = rbd_open(io, name, &img, snap);
    if (r < 0) {
        fprintf(stderr, "capi_test: open %s@%s: %s\n", name, snap, strerror(-r));
        return 0;
    }
    char *buf = malloc(len);
    ssize_t n = rbd_read(img, off, len, buf);
    int same = n == (ssize_t)len && memcmp(buf, want, len) == 0;
    if (!same)
        fprintf(stderr, "capi_test: %s@%s [%llu, +%zu): read %zd bytes%s\n", name, snap, (unsigned long long)off, len, n,
                n == (ssize_t)len ? ", not the expected ones" : "");
    free(buf);
    rbd_close(img);
    return same;
}

/* A snapshot of a standalone child, made with rbd_ext_snap_create, reads the parent where the
 * child had not written (stock rbd_snap_create's record would read zeros there), and keeps
 * reading so after the child writes there. */
static void test_snap_create(rados_ioctx_t io, const char *prefix) {
    char parent[128], child[128], missing[128];
    name(parent, sizeof parent, prefix, "sparent");
    name(child, sizeof child, prefix, "schild");
    name(missing, sizeof missing, prefix, "snever");
    const size_t obj = 65536, len = 3 * obj + 1000;
    char *data = pattern(len, 5);
    make_image(io, parent, data, len, 16);
    rbd_image_options_t o;
    rbd_image_options_create(&o);
    rbd_image_options_set_uint64(o, RBD_IMAGE_OPTION_FEATURES, RBD_FEATURE_LAYERING | RBD_FEATURE_EXCLUSIVE_LOCK);
    EXPECT(0, rbd_ext_clone_standalone(io, parent, io, child, o));
    rbd_image_options_destroy(o);

    /* The child writes part of object 0 only; objects 1.. stay its parent's. */
    char *mine = pattern(4096, 6);
    rbd_image_t img;
    EXPECT(0, rbd_open(io, child, &img, NULL));
    CHECK(rbd_write(img, 100, 4096, mine) == 4096, "write %s", child);
    EXPECT(0, rbd_close(img));

    EXPECT(0, rbd_ext_snap_create(io, child, "s1"));
    EXPECT(-EEXIST, rbd_ext_snap_create(io, child, "s1"));
    EXPECT(-EINVAL, rbd_ext_snap_create(io, child, ""));
    EXPECT(-EINVAL, rbd_ext_snap_create(io, child, NULL));
    EXPECT(-EINVAL, rbd_ext_snap_create(io, child, "a@b"));
    EXPECT(-ENOENT, rbd_ext_snap_create(io, missing, "s1"));

    /* After the snapshot, the child overwrites part of object 2 (inherited when it was taken). */
    char *later = pattern(2000, 7);
    EXPECT(0, rbd_open(io, child, &img, NULL));
    CHECK(rbd_write(img, 2 * obj + 10, 2000, later) == 2000, "write %s", child);
    EXPECT(0, rbd_close(img));

    /* Stock librbd reads the snapshot: the child's bytes, and the parent's (not zeros) wherever the
     * child had not written, also where it wrote afterwards. */
    char *zeros = calloc(1, obj);
    CHECK(memcmp(data + obj, zeros, obj) != 0, "the parent's object 1 is not zeros");
    free(zeros);
    CHECK(snap_reads_as(io, child, "s1", 100, mine, 4096), "%s@s1 reads the child's bytes", child);
    CHECK(snap_reads_as(io, child, "s1", 0, data, 100), "%s@s1 reads the parent before the child's bytes", child);
    CHECK(snap_reads_as(io, child, "s1", obj, data + obj, len - obj), "%s@s1 reads the parent where the child did not write", child);
    char *head = malloc(len);
    memcpy(head, data, len);
    memcpy(head + 100, mine, 4096);
    memcpy(head + 2 * obj + 10, later, 2000);
    CHECK(reads_as(io, child, head, len), "%s (HEAD) reads its writes over the parent", child);

    /* A snapshot holds the image: librbd removes it, then the child and parent go. */
    EXPECT(0, rbd_open(io, child, &img, NULL));
    EXPECT(0, rbd_snap_remove(img, "s1"));
    EXPECT(0, rbd_close(img));
    EXPECT(0, rbd_ext_remove(io, child));
    EXPECT(0, rbd_ext_remove(io, parent));
    free(head);
    free(later);
    free(mine);
    free(data);
}

static void test_remote(rados_ioctx_t io, const char *prefix) {
    const char *conf = env("RBD_EXT_CAPI_REMOTE_CONF");
    const char *keyring = env("RBD_EXT_CAPI_REMOTE_KEYRING");
    rados_t rc = cluster_connect(conf);
    rados_ioctx_t rio;
    EXPECT(0, rados_ioctx_create(rc, "rbd", &rio));
    char parent[128], child[128];
    name(parent, sizeof parent, prefix, "rparent");
    name(child, sizeof child, prefix, "rchild");
    const size_t len = 2 * 65536 + 77;
    char *data = pattern(len, 2);
    make_image(rio, parent, data, len, 16);

    /* Handles of two clusters need the remote variant. */
    EXPECT(-EXDEV, rbd_ext_clone_standalone(rio, parent, io, child, NULL));
    EXPECT(-EINVAL, rbd_ext_clone_standalone_remote(conf, keyring, "config://both", NULL, "capi-remote", "rbd", NULL, parent, io, child, NULL));
    EXPECT(0, rbd_ext_clone_standalone_remote(conf, keyring, NULL, NULL, "capi-remote", "rbd", NULL, parent, io, child, NULL));

    rbd_ext_parent_info_t pi;
    EXPECT(0, rbd_ext_get_parent(io, child, &pi));
    CHECK(pi.parent_type == RBD_EXT_PARENT_TYPE_REMOTE, "type %d", pi.parent_type);
    CHECK(strcmp(pi.source, "capi-remote") == 0, "source %s", pi.source);
    CHECK(strcmp(pi.pool_name, "rbd") == 0 && strcmp(pi.image_name, parent) == 0, "parent %s/%s", pi.pool_name, pi.image_name);
    CHECK(pi.overlap == len, "overlap %llu", (unsigned long long)pi.overlap);
    rbd_ext_parent_info_cleanup(&pi);

    /* The parent (in its own cluster, through the caller's handle there) is protected. */
    EXPECT(-EBUSY, rbd_ext_remove(rio, parent));
    struct progress p = {0};
    EXPECT(0, rbd_ext_flatten_with_progress(io, child, on_progress, &p));
    CHECK(p.calls >= 2 && p.last_done == p.last_total && p.last_total == 3, "progress %d calls, %llu/%llu", p.calls,
          (unsigned long long)p.last_done, (unsigned long long)p.last_total);
    CHECK(reads_as(io, child, data, len), "flattened remote clone %s", child);
    EXPECT(0, rbd_ext_remove(rio, parent));
    EXPECT(0, rbd_ext_remove(io, child));
    free(data);
    rados_ioctx_destroy(rio);
    rados_shutdown(rc);
}

struct worker {
    rados_ioctx_t io;
    const char *parent;
    char child[160];
    const char *data;
    size_t len;
};

/* One thread's clone, parent lookup, listing, flatten and removal, concurrent with others
 * on the same parent and the same cluster handle. */
static void *worker_run(void *arg) {
    struct worker *w = arg;
    EXPECT(0, rbd_ext_clone_standalone(w->io, w->parent, w->io, w->child, NULL));
    rbd_ext_parent_info_t pi;
    EXPECT(0, rbd_ext_get_parent(w->io, w->child, &pi));
    CHECK(strcmp(pi.image_name, w->parent) == 0, "parent %s", pi.image_name);
    rbd_ext_parent_info_cleanup(&pi);
    rbd_ext_linked_image_spec_t kids[8];
    size_t max = 8;
    EXPECT(0, rbd_ext_list_children(w->io, w->parent, kids, &max));
    int mine = 0;
    for (size_t i = 0; i < max; i++)
        mine += strcmp(kids[i].image_name, w->child) == 0;
    rbd_ext_linked_image_spec_list_cleanup(kids, max);
    CHECK(mine == 1, "%s listed %d times among %zu", w->child, mine, max);
    struct progress p = {0};
    EXPECT(0, rbd_ext_flatten_with_progress(w->io, w->child, on_progress, &p));
    CHECK(reads_as(w->io, w->child, w->data, w->len), "flattened %s", w->child);
    EXPECT(0, rbd_ext_remove(w->io, w->child));
    return NULL;
}

static void test_threads(rados_ioctx_t io, const char *prefix) {
    enum { N = 4 };
    char parent[128];
    name(parent, sizeof parent, prefix, "tparent");
    const size_t len = 2 * 65536 + 3;
    char *data = pattern(len, 4);
    make_image(io, parent, data, len, 16);
    struct worker w[N];
    pthread_t t[N];
    for (int i = 0; i < N; i++) {
        w[i] = (struct worker){.io = io, .parent = parent, .data = data, .len = len};
        snprintf(w[i].child, sizeof w[i].child, "%s-tchild%d", prefix, i);
        CHECK(pthread_create(&t[i], NULL, worker_run, &w[i]) == 0, "pthread_create");
    }
    for (int i = 0; i < N; i++)
        pthread_join(t[i], NULL);
    size_t max = 0;
    EXPECT(0, rbd_ext_list_children(io, parent, NULL, &max));
    EXPECT(0, rbd_ext_remove(io, parent));
    free(data);
}

static char *read_file(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) {
        perror(path);
        exit(2);
    }
    char *s = calloc(1, 4096);
    size_t n = fread(s, 1, 4095, f);
    fclose(f);
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == ' '))
        s[--n] = 0;
    return s;
}

static void test_s3(rados_ioctx_t io, const char *prefix) {
    const char *endpoint = env("RBD_EXT_S3_ENDPOINT"), *region = env("RBD_EXT_S3_REGION");
    const char *access = env("RBD_EXT_S3_ACCESS_KEY"), *secret_file = env("RBD_EXT_S3_SECRET_FILE");
    const char *bucket = env("RBD_EXT_CAPI_BUCKET");
    char *secret = read_file(secret_file);
    char src[128], s3p[128], s3c[128], key[160], url[256];
    name(src, sizeof src, prefix, "s3src");
    name(s3p, sizeof s3p, prefix, "s3parent");
    name(s3c, sizeof s3c, prefix, "s3child");
    snprintf(key, sizeof key, "%s.raw", prefix);
    snprintf(url, sizeof url, "s3://%s/%s", bucket, key);
    const size_t len = 3 * 65536 + 5;
    char *data = pattern(len, 3);
    make_image(io, src, data, len, 16);

    /* publish (the secret in memory, for this call only) */
    rbd_ext_s3_target_t t = {0};
    t.endpoint = endpoint;
    t.region = region;
    t.access_key = access;
    t.secret_key = secret;
    struct progress p = {0};
    EXPECT(-EINVAL, rbd_ext_s3_publish(io, src, &t, key, on_progress, &p)); /* no bucket */
    t.bucket = bucket;
    EXPECT(0, rbd_ext_s3_publish(io, src, &t, key, on_progress, &p));
    CHECK(p.calls >= 2 && p.last_done == len && p.last_total == len, "publish progress %d calls, %llu/%llu", p.calls,
          (unsigned long long)p.last_done, (unsigned long long)p.last_total);

    /* attach: a new S3-backed parent of the published object */
    rbd_ext_s3_attach_opts_t a = {0};
    a.endpoint = endpoint;
    a.region = region;
    a.bucket = bucket;
    a.object = key;
    a.access_key = access;
    a.secret_key_file = secret_file;
    EXPECT(0, rbd_ext_s3_attach(io, s3p, &a));
    EXPECT(-EEXIST, rbd_ext_s3_attach(io, s3p, &a));

    rbd_ext_parent_info_t pi;
    EXPECT(0, rbd_ext_get_parent(io, s3p, &pi));
    CHECK(pi.parent_type == RBD_EXT_PARENT_TYPE_S3, "type %d", pi.parent_type);
    CHECK(strcmp(pi.source, url) == 0, "source %s, not %s", pi.source, url);
    CHECK(strcmp(pi.image_name, "") == 0 && strcmp(pi.pool_name, "") == 0, "names %s/%s", pi.pool_name, pi.image_name);
    rbd_ext_parent_info_cleanup(&pi);

    /* clone from the S3-backed parent; a plain parent is refused by the S3 variant */
    EXPECT(-EINVAL, rbd_ext_clone_standalone_s3(io, src, io, s3c, NULL));
    EXPECT(0, rbd_ext_clone_standalone_s3(io, s3p, io, s3c, NULL));
    EXPECT(0, rbd_ext_get_parent(io, s3c, &pi));
    CHECK(pi.parent_type == RBD_EXT_PARENT_TYPE_STANDALONE && strcmp(pi.image_name, s3p) == 0, "type %d parent %s", pi.parent_type,
          pi.image_name);
    rbd_ext_parent_info_cleanup(&pi);

    /* hydrate the parent from S3; a plain image has nothing to hydrate */
    memset(&p, 0, sizeof p);
    EXPECT(-EINVAL, rbd_ext_hydrate_with_progress(io, src, 0, on_progress, &p));
    memset(&p, 0, sizeof p);
    EXPECT(0, rbd_ext_hydrate_with_progress(io, s3p, 2, on_progress, &p));
    CHECK(p.calls >= 2 && p.last_done == p.last_total && p.last_total == 4, "hydrate progress %d calls, %llu/%llu", p.calls,
          (unsigned long long)p.last_done, (unsigned long long)p.last_total);

    /* the child, flattened, holds the data that went through S3 */
    memset(&p, 0, sizeof p);
    EXPECT(0, rbd_ext_flatten_with_progress(io, s3c, on_progress, &p));
    CHECK(reads_as(io, s3c, data, len), "flattened %s reads as the published image", s3c);
    EXPECT(0, rbd_ext_remove(io, s3c));
    EXPECT(0, rbd_ext_remove(io, s3p));
    EXPECT(0, rbd_ext_remove(io, src));
    free(data);
    free(secret);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: capi_test PREFIX\n");
        return 2;
    }
    rados_t c = cluster_connect(NULL);
    rados_ioctx_t io;
    EXPECT(0, rados_ioctx_create(c, "rbd", &io));
    test_version();
    test_local(io, argv[1]);
    test_snap_create(io, argv[1]);
    test_threads(io, argv[1]);
    test_remote(io, argv[1]);
    test_s3(io, argv[1]);
    rados_ioctx_destroy(io);
    rados_shutdown(c);
    printf("capi_test: ok\n");
    return 0;
}
