// rbd-ext objclass shim: C functions over the OSD's C++ objclass API (see shim.h).
//
// Compiled against Debian's rados-objclass-dev / libradospp-dev headers (Pacific). The
// functions the public objclass.h does not declare are exported by ceph-osd with exactly the
// signatures below (checked with `nm -D --defined-only /usr/bin/ceph-osd | c++filt`); they
// resolve when ceph-osd dlopens the plugin. No C++ exception may escape into Rust: every
// entry point catches and returns -EIO (or -ENOMEM).

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <exception>
#include <map>
#include <new>
#include <string>

#include <rados/objclass.h>

#include "shim.h"

typedef int (*cls_method_call_t)(cls_method_context_t ctx, char *indata, int datalen,
                                 char **outdata, int *outdatalen);

// Exported by ceph-osd, absent from the public header.
extern "C" int cls_register_method(cls_handle_t hclass, const char *method, int flags,
                                   cls_method_call_t class_call, cls_method_handle_t *handle);
extern int cls_cxx_write_full(cls_method_context_t hctx, ceph::bufferlist *bl);
extern int cls_cxx_map_get_vals(cls_method_context_t hctx, const std::string &start_after,
                                const std::string &filter_prefix, uint64_t max_to_get,
                                std::map<std::string, ceph::bufferlist> *vals, bool *more);
extern int cls_cxx_map_set_vals(cls_method_context_t hctx,
                                const std::map<std::string, ceph::bufferlist> *map);
extern int cls_cxx_map_remove_key(cls_method_context_t hctx, const std::string &key);

namespace {

// Copies a bufferlist into a malloc'd buffer owned by the caller.
int to_malloc(ceph::bufferlist &bl, char **out, size_t *out_len) {
  *out = nullptr;
  *out_len = bl.length();
  if (bl.length() == 0) return 0;
  char *p = static_cast<char *>(malloc(bl.length()));
  if (!p) return -ENOMEM;
  bl.begin().copy(bl.length(), p);
  *out = p;
  return 0;
}

void put_u32(std::string &s, uint32_t v) {
  char b[4] = {char(v & 0xff), char((v >> 8) & 0xff), char((v >> 16) & 0xff), char((v >> 24) & 0xff)};
  s.append(b, 4);
}

template <typename F>
int guarded(F f) {
  try {
    return f();
  } catch (const std::bad_alloc &) {
    return -ENOMEM;
  } catch (...) {
    return -EIO;
  }
}

}  // namespace

extern "C" {

int rbdext_register_class(const char *name, void **class_handle) {
  return guarded([&] { return cls_register(name, class_handle); });
}

int rbdext_register_method(void *class_handle, const char *name, int flags, rbdext_method_t fn) {
  cls_method_handle_t h;
  return guarded([&] {
    return cls_register_method(class_handle, name, flags,
                               reinterpret_cast<cls_method_call_t>(fn), &h);
  });
}

void rbdext_log(int level, const char *msg) {
  cls_log(level, "<cls> rbd_ext: %s", msg);
}

int rbdext_stat(void *hctx, uint64_t *size, int64_t *mtime) {
  return guarded([&] {
    time_t t = 0;
    int r = cls_cxx_stat(hctx, size, &t);
    *mtime = t;
    return r;
  });
}

int rbdext_create(void *hctx, int exclusive) {
  return guarded([&] { return cls_cxx_create(hctx, exclusive != 0); });
}

int rbdext_remove(void *hctx) {
  return guarded([&] { return cls_cxx_remove(hctx); });
}

int rbdext_read(void *hctx, uint64_t off, uint64_t len, char **out, size_t *out_len) {
  *out = nullptr;
  *out_len = 0;
  if (off > INT32_MAX || len > INT32_MAX) return -EINVAL;
  return guarded([&] {
    ceph::bufferlist bl;
    int r = cls_cxx_read(hctx, int(off), int(len), &bl);
    if (r < 0) return r;
    return to_malloc(bl, out, out_len);
  });
}

int rbdext_write(void *hctx, uint64_t off, const char *data, size_t len) {
  if (off > INT32_MAX || len > INT32_MAX) return -EINVAL;
  return guarded([&] {
    ceph::bufferlist bl;
    bl.append(data, len);
    return cls_cxx_write(hctx, int(off), int(len), &bl);
  });
}

int rbdext_write_full(void *hctx, const char *data, size_t len) {
  return guarded([&] {
    ceph::bufferlist bl;
    bl.append(data, len);
    return cls_cxx_write_full(hctx, &bl);
  });
}

int rbdext_getxattr(void *hctx, const char *name, char **out, size_t *out_len) {
  *out = nullptr;
  *out_len = 0;
  return guarded([&] {
    ceph::bufferlist bl;
    int r = cls_cxx_getxattr(hctx, name, &bl);
    if (r < 0) return r;
    return to_malloc(bl, out, out_len);
  });
}

int rbdext_setxattr(void *hctx, const char *name, const char *value, size_t len) {
  return guarded([&] {
    ceph::bufferlist bl;
    bl.append(value, len);
    return cls_cxx_setxattr(hctx, name, &bl);
  });
}

int rbdext_map_get_val(void *hctx, const char *key, size_t key_len, char **out, size_t *out_len) {
  *out = nullptr;
  *out_len = 0;
  return guarded([&] {
    ceph::bufferlist bl;
    int r = cls_cxx_map_get_val(hctx, std::string(key, key_len), &bl);
    if (r < 0) return r;
    return to_malloc(bl, out, out_len);
  });
}

int rbdext_map_get_vals(void *hctx, const char *start_after, size_t start_after_len,
                        const char *prefix, size_t prefix_len, uint64_t max,
                        char **out, size_t *out_len, int *more) {
  *out = nullptr;
  *out_len = 0;
  *more = 0;
  return guarded([&] {
    std::map<std::string, ceph::bufferlist> vals;
    bool m = false;
    int r = cls_cxx_map_get_vals(hctx, std::string(start_after, start_after_len),
                                 std::string(prefix, prefix_len), max, &vals, &m);
    if (r < 0) return r;
    std::string enc;
    put_u32(enc, uint32_t(vals.size()));
    for (auto &kv : vals) {
      put_u32(enc, uint32_t(kv.first.size()));
      enc.append(kv.first);
      put_u32(enc, kv.second.length());
      enc.append(kv.second.c_str(), kv.second.length());
    }
    *more = m ? 1 : 0;
    char *p = static_cast<char *>(malloc(enc.size()));
    if (!p) return -ENOMEM;
    memcpy(p, enc.data(), enc.size());
    *out = p;
    *out_len = enc.size();
    return 0;
  });
}

int rbdext_map_set_vals(void *hctx, size_t n, const char *const *keys, const size_t *key_lens,
                        const char *const *vals, const size_t *val_lens) {
  return guarded([&] {
    std::map<std::string, ceph::bufferlist> m;
    for (size_t i = 0; i < n; i++) {
      ceph::bufferlist bl;
      bl.append(vals[i], val_lens[i]);
      m[std::string(keys[i], key_lens[i])] = bl;
    }
    return cls_cxx_map_set_vals(hctx, &m);
  });
}

int rbdext_map_remove_key(void *hctx, const char *key, size_t key_len) {
  return guarded([&] { return cls_cxx_map_remove_key(hctx, std::string(key, key_len)); });
}

}  // extern "C"
