/* The C APIs rbd-ext binds: librados for objects, librbd for image create/remove/resize. */
#include <rados/librados.h>
#include <rbd/librbd.h>
