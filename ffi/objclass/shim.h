/*
 * rbd-ext objclass shim: the objclass calls the Rust `rbd_ext` class needs, as C functions.
 *
 * The OSD's omap, stat and write calls are C++-only (they take ceph::bufferlist and
 * std::string), so this file is the one place that touches them. Every function returns
 * 0 or a negative errno, like the objclass call it wraps. Buffers returned through `out`
 * are allocated with malloc and owned by the caller (free them with free()).
 */
#ifndef RBD_EXT_OBJCLASS_SHIM_H
#define RBD_EXT_OBJCLASS_SHIM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A method body with the objclass C calling convention: output via malloc'd *out. */
typedef int (*rbdext_method_t)(void *hctx, char *in, int in_len, char **out, int *out_len);

int rbdext_register_class(const char *name, void **class_handle);
int rbdext_register_method(void *class_handle, const char *name, int flags, rbdext_method_t fn);
void rbdext_log(int level, const char *msg);

int rbdext_stat(void *hctx, uint64_t *size, int64_t *mtime);
int rbdext_create(void *hctx, int exclusive);
int rbdext_remove(void *hctx);
int rbdext_read(void *hctx, uint64_t off, uint64_t len, char **out, size_t *out_len);
int rbdext_write(void *hctx, uint64_t off, const char *data, size_t len);
int rbdext_write_full(void *hctx, const char *data, size_t len);
int rbdext_getxattr(void *hctx, const char *name, char **out, size_t *out_len);
int rbdext_setxattr(void *hctx, const char *name, const char *value, size_t len);

int rbdext_map_get_val(void *hctx, const char *key, size_t key_len, char **out, size_t *out_len);
/* Entries with key > start_after and starting with prefix, at most max. *out holds them
 * Ceph-encoded as map<string, bufferlist> (u32 count, then u32-length-prefixed key and value
 * per entry). */
int rbdext_map_get_vals(void *hctx, const char *start_after, size_t start_after_len,
                        const char *prefix, size_t prefix_len, uint64_t max,
                        char **out, size_t *out_len, int *more);
int rbdext_map_set_vals(void *hctx, size_t n, const char *const *keys, const size_t *key_lens,
                        const char *const *vals, const size_t *val_lens);
int rbdext_map_remove_key(void *hctx, const char *key, size_t key_len);

#ifdef __cplusplus
}
#endif

#endif
