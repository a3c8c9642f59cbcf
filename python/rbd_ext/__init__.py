"""Standalone copy-on-write RBD clones from Python, in python-rbd's style.

A standalone clone's parent is another image's HEAD, not a snapshot: no snapshot, protect
or flatten is needed before cloning, and the parent stays protected (stock ``rbd rm`` and
writes refused) while it has children. Stock librbd reads and writes the clone::

    import rados, rbd, rbd_ext
    with rados.Rados(conffile='', rados_id='admin') as cluster:
        with cluster.open_ioctx('volumes') as src, cluster.open_ioctx('images') as dst:
            rbd_ext.RBDExt().clone_standalone(src, 'volume-1', dst, 'image-1')
            with rbd.Image(dst, 'image-1') as image:
                data = image.read(0, 4096)

Install: ``/usr/bin/python3 -m pip install --break-system-packages ./python`` from the
repository (or ``pip install ./python`` in a venv made with ``--system-site-packages``, so
that Debian's python3-rados and python3-rbd stay importable).

**python3-rados objects.** The methods take the ``rados.Ioctx`` objects a python-rbd user
already holds. The module cannot use the Ioctx's own librados handle: python3-rados 16.2.15
keeps it (and the ``Rados`` it belongs to) in Cython ``cdef`` attributes that Python code
cannot read, and borrowing a C pointer out of another extension's object layout would be
unsound. Its public surface (checked by introspection of Debian's python3-rados 16.2.15)
is: ``Ioctx.get_pool_name()``, ``get_namespace()``, ``get_pool_id()`` and ``name``/``nspace``;
``Rados.conffile``, ``rados_id``, ``conf_get()`` and ``get_fsid()``; no ``Ioctx.rados``.
So this module opens its **own connection with the same settings** and addresses the same
pool and namespace:

- the ``Rados`` of an Ioctx is ``ioctx.rados`` where the binding exposes it, else the one
  ``rados.Rados`` object the Ioctx references, found with ``gc.get_referents`` (the garbage
  collector's traversal, which Cython generates for the Ioctx's reference to its Rados);
- the conf file is ``Rados.conffile`` (``''``: librados's search path; unset: none);
- the client is ``client.<Rados.rados_id>``; a Rados made with ``name=`` (or neither) does
  not record its name, so it is read back from the default of ``mgr_data``
  (``/var/lib/ceph/mgr/$cluster-$id``, which librados expands for the handle), and the
  cluster name with it;
- the effective values of ``mon_host``, ``keyring``, ``keyfile``, ``key``, the auth and
  messenger modes and the client timeouts (``Rados.conf_get``) are applied over the conf
  file, so settings the caller made with ``conf=`` or ``conf_set`` carry over. Other
  ``conf_set`` changes do not.

The connection is checked to reach the same cluster (fsid) and kept for the life of the
process, one per distinct settings (``rados.Rados`` objects cannot be weakly referenced).
Secrets read this way go only into that connection, never into a message.

**Errors** mirror python-rbd's: :class:`Error` (a subclass of :class:`OSError`, with
``errno`` set) and :class:`ImageNotFound` (ENOENT), :class:`ImageBusy` (EBUSY),
:class:`ImageExists` (EEXIST), :class:`PermissionError` (EPERM, EACCES),
:class:`InvalidArgument` (EINVAL), :class:`ReadOnlyImage` (EROFS),
:class:`FunctionNotSupported` (EOPNOTSUPP), :class:`Timeout` (ETIMEDOUT).

**Threads.** Every call releases the GIL while the cluster works. Progress callbacks
(``on_progress(offset, total)``, python-rbd's shape) are called with the GIL held, one at a
time, never going backwards, and end at ``(total, total)``; if one raises, it is not called
again and its exception is raised when the operation has ended (the operation itself is
not interrupted).
"""

import errno as _errno
import gc as _gc
import threading as _threading

from . import _native
from ._native import (
    Error,
    FunctionNotSupported,
    ImageBusy,
    ImageExists,
    ImageNotFound,
    InvalidArgument,
    PermissionError,
    ReadOnlyImage,
    Timeout,
)

__version__ = _native.__version__

__all__ = [
    "RBDExt",
    "Error",
    "ImageNotFound",
    "ImageBusy",
    "ImageExists",
    "PermissionError",
    "InvalidArgument",
    "ReadOnlyImage",
    "FunctionNotSupported",
    "Timeout",
]

# Effective config values of the caller's handle that the module's connection takes over:
# where the monitors are, who we are and how we authenticate, and the client timeouts.
_MIRRORED = (
    "mon_host",
    "mon_dns_srv_name",
    "keyring",
    "keyfile",
    "key",
    "auth_client_required",
    "ms_client_mode",
    "ms_mon_client_mode",
    "client_mount_timeout",
    "rados_mon_op_timeout",
    "rados_osd_op_timeout",
)

# Options whose defaults are `<prefix>$cluster-$id`: where a Rados made without rados_id
# shows its client id.
_ID_DEFAULTS = (
    ("mgr_data", "/var/lib/ceph/mgr/"),
    ("mon_data", "/var/lib/ceph/mon/"),
    ("mds_data", "/var/lib/ceph/mds/"),
)

_lock = _threading.Lock()
_connections = {}


def _rados_of(ioctx):
    """The rados.Rados an Ioctx belongs to."""
    import rados

    if not isinstance(ioctx, rados.Ioctx):
        raise TypeError("expected a rados.Ioctx, got %s" % type(ioctx).__name__)
    if ioctx.state != "open":
        raise InvalidArgument(_errno.EINVAL, "the rados.Ioctx is %s, not open" % ioctx.state)
    owner = getattr(ioctx, "rados", None)
    if isinstance(owner, rados.Rados):
        return owner
    found = [o for o in _gc.get_referents(ioctx) if isinstance(o, rados.Rados)]
    if len(found) != 1:
        raise InvalidArgument(
            _errno.EINVAL,
            "cannot tell which rados.Rados this Ioctx belongs to (found %d): this python3-rados "
            "is not one rbd_ext knows" % len(found),
        )
    return found[0]


def _cluster_and_id(r):
    """(cluster name or None, client id or None) from an option whose default names them."""
    for option, prefix in _ID_DEFAULTS:
        value = r.conf_get(option)
        if not value or not value.startswith(prefix):
            continue
        rest = value[len(prefix):]
        # Cluster names have no '-' (Ceph refuses them in its tools); ids may.
        cluster, dash, ident = rest.partition("-")
        if dash and ident and "/" not in rest:
            return (cluster or None), ident
    return None, None


def _settings_of(r):
    """The connection settings of a rados.Rados, as a hashable tuple."""
    if r.state != "connected":
        raise InvalidArgument(_errno.EINVAL, "the rados.Rados is %s, not connected" % r.state)
    conffile = r.conffile
    if isinstance(conffile, str):
        conf = conffile or None  # '' reads librados's search path
        read_conf = True
    else:
        conf = None
        # DEFAULT_CONF_FILES (-2) searches; NO_CONF_FILE (-1) and None read nothing.
        read_conf = conffile == getattr(r, "DEFAULT_CONF_FILES", -2)
    if not read_conf:
        conf = "/dev/null"
    cluster, ident = _cluster_and_id(r)
    ident = r.rados_id or ident
    if not ident:
        raise InvalidArgument(
            _errno.EINVAL,
            "cannot tell which client this rados.Rados connected as: create it with rados_id=",
        )
    settings = []
    for option in _MIRRORED:
        value = r.conf_get(option)
        if value:
            settings.append((option, value))
    return (conf, ident, cluster, tuple(settings))


def _connection(r):
    """The module's connection with the settings of rados.Rados `r`."""
    key = _settings_of(r)
    with _lock:
        conn = _connections.get(key)
        if conn is None:
            conn = _native.Connection(key[0], key[1], key[2], list(key[3]))
            fsid = conn.fsid()
            if fsid != r.get_fsid():
                raise InvalidArgument(
                    _errno.EINVAL,
                    "a connection with this rados.Rados's settings reached cluster %s, not %s"
                    % (fsid, r.get_fsid()),
                )
            _connections[key] = conn
        return conn


def _where(ioctx):
    """(connection, pool name, namespace) of an Ioctx."""
    return _connection(_rados_of(ioctx)), ioctx.get_pool_name(), ioctx.get_namespace()


def _name(name, what="name"):
    if isinstance(name, bytes):
        name = name.decode("utf-8")
    if not isinstance(name, str):
        raise TypeError("%s must be a string" % what)
    return name


class RBDExt(object):
    """Standalone clones and their management, as python-rbd's ``rbd.RBD`` does for images.

    Every method takes python3-rados ``Ioctx`` objects (see the module docstring) and image
    names, and raises :class:`Error` subclasses carrying the errno.
    """

    def clone_standalone(self, p_ioctx, p_name, c_ioctx, c_name, features=None, order=None, data_pool=None):
        """Create ``c_name`` in ``c_ioctx``'s pool and namespace, a copy-on-write clone of the
        current content (HEAD) of ``p_name`` in ``p_ioctx``'s.

        :param features: RBD feature bits of the clone (default: the parent's)
        :param order: object size exponent; must be the parent's (default)
        :param data_pool: pool for the clone's data objects
        :raises: :class:`ImageNotFound` (no parent), :class:`ImageExists` (child exists),
            :class:`ImageBusy` (the parent is open for writing), :class:`InvalidArgument`
        """
        p_conn, p_pool, p_ns = _where(p_ioctx)
        c_conn, c_pool, c_ns = _where(c_ioctx)
        if p_conn is not c_conn and p_conn.fsid() != c_conn.fsid():
            raise InvalidArgument(
                _errno.EINVAL,
                "the parent's ioctx is in another cluster: remote parents need the "
                "rbd-ext CLI's --remote-cluster-conf",
            )
        c_conn.clone_standalone(
            p_pool, p_ns, _name(p_name, "p_name"), c_pool, c_ns, _name(c_name, "c_name"),
            features=features, order=order, data_pool=data_pool,
        )

    def children(self, ioctx, name):
        """The standalone clones of an image, as python-rbd's ``list_children2`` entries:
        dicts with ``pool``, ``pool_namespace`` and ``image`` (entries left by stock tools
        removing or flattening a child are dropped on the way)."""
        conn, pool, ns = _where(ioctx)
        return conn.children(pool, ns, _name(name))

    def remove(self, ioctx, name):
        """Remove an image, detaching it from its parent if it is a clone.

        :raises: :class:`ImageBusy` while it has standalone clones (or a client has it
            open), :class:`ImageNotFound`
        """
        conn, pool, ns = _where(ioctx)
        conn.remove(pool, ns, _name(name))

    def snap_create(self, ioctx, name, snap_name):
        """Create snapshot ``snap_name`` of image ``name`` (python-rbd's ``Image.create_snap``,
        by image name), right for every kind of image: a standalone clone's snapshot keeps its
        parent overlap, so python-rbd (``rbd.Image(ioctx, name, snapshot=snap_name)``) reads
        the parent where the clone had not written. Stock ``create_snap`` is refused on a
        standalone clone (``EDQUOT``): its snapshot would read zeros there. A plain image or
        a stock clone goes through librbd; when another client owns the clone's exclusive
        lock, the request goes to that owner.

        :raises: :class:`ImageExists` (a snapshot of that name exists),
            :class:`InvalidArgument` (an empty name, or one with ``/`` or ``@``),
            :class:`ImageNotFound`
        """
        snap_name = _name(snap_name, "snap_name")
        conn, pool, ns = _where(ioctx)
        conn.snap_create(pool, ns, _name(name), snap_name)

    def flatten(self, ioctx, name, on_progress=None):
        """Copy every inherited object into the clone and detach it from its parent.

        :param on_progress: called as ``on_progress(offset, total)`` (objects done, objects
            in all), as python-rbd's progress callbacks
        :raises: :class:`InvalidArgument` (not a clone), :class:`ImageBusy` (another writer)
        """
        conn, pool, ns = _where(ioctx)
        conn.flatten(pool, ns, _name(name), on_progress)

    def info(self, ioctx, name):
        """The image's facts: python-rbd ``stat()``'s keys (``size``, ``obj_size``,
        ``num_objs``, ``order``, ``block_name_prefix``) and ``name``, ``id``, ``features``,
        ``data_pool``, ``s3_backed`` (filled from S3 on demand: see :meth:`s3_attach`) and
        ``parent`` (``None``, or as :meth:`parent_info` returns it)."""
        conn, pool, ns = _where(ioctx)
        return conn.info(pool, ns, _name(name))

    def parent_info(self, ioctx, name):
        """The parent of a clone: a dict with ``pool_name``, ``pool_namespace``,
        ``image_name``, ``image_id``, ``snap_name`` (``None`` for a standalone parent),
        ``type`` (``standalone``, ``remote-standalone``, ``snapshot``) and
        ``overlap`` (bytes).

        :raises: :class:`ImageNotFound` when the image has no parent (as python-rbd's
            ``get_parent_image_spec``); an image back-filled from S3 has none (its ``info``
            says ``s3_backed``)
        """
        parent = self.info(ioctx, name)["parent"]
        if parent is None:
            raise ImageNotFound(_errno.ENOENT, "image %s has no parent" % _name(name))
        return parent

    def s3_attach(self, ioctx, name, endpoint, bucket, image_name=None, prefix=None, region=None,
                  access_key=None, secret_key_ref=None, secret_key_file=None, anonymous=False,
                  replace_secret=False, size=None, order=None, ca_file=None, timeout_ms=None, retries=None):
        """Create ``name``, an image back-filled on demand from a raw image in S3 (``rbd-ext s3
        attach``): ``image_name`` (one raw object, ranged GETs) or ``prefix`` (one S3 object
        per RADOS object). The secret is never passed inline: ``secret_key_file`` (stored in
        the mon config-key store) or a ``config://`` ``secret_key_ref``; or ``anonymous``."""
        conn, pool, ns = _where(ioctx)
        conn.s3_attach(
            pool, ns, _name(name), endpoint, bucket, region=region, image_name=image_name, prefix=prefix,
            access_key=access_key, secret_key_ref=secret_key_ref, secret_key_file=secret_key_file,
            anonymous=anonymous, replace_secret=replace_secret, size=size, order=order, ca_file=ca_file,
            timeout_ms=timeout_ms, retries=retries,
        )

    def s3_verify(self, ioctx, name):
        """Check an S3-backed image's settings against S3; returns the checks passed as
        ``(check, result)`` pairs and raises on the first that fails (``rbd-ext s3 verify``)."""
        conn, pool, ns = _where(ioctx)
        return conn.s3_verify(pool, ns, _name(name))

    def hydrate(self, ioctx, name, parallel=16, on_progress=None):
        """Fill an S3-backed image from S3 completely (or flatten a clone), ``parallel``
        objects at a time (``rbd-ext hydrate``); returns ``{'objects', 'bytes', 'seconds'}``."""
        conn, pool, ns = _where(ioctx)
        return conn.hydrate(pool, ns, _name(name), parallel=parallel, on_progress=on_progress)

    def s3_publish(self, ioctx, name, endpoint, bucket, key, path=None, region=None, access_key=None,
                   secret_key_file=None, secret_key_ref=None, object_size=4 << 20, ca_file=None,
                   create_bucket=False, on_progress=None):
        """Upload image ``name`` (its logical content, through rbd-ext), or the raw file
        ``path`` when given (then ``name`` is ignored), to ``s3://bucket/key`` with its
        manifest beside it (``rbd-ext s3 publish``), creating the bucket first with
        ``create_bucket``. Without a secret the requests are anonymous. Returns the
        manifest's facts (``image_size``, ``object_size``, ``objects``, ``zero_objects``,
        ``etag``, ``manifest``)."""
        conn, pool, ns = _where(ioctx)
        return conn.s3_publish(
            pool, ns, "" if path is not None else _name(name), path, endpoint, bucket, key, region=region,
            access_key=access_key, secret_key_file=secret_key_file, secret_key_ref=secret_key_ref,
            object_size=object_size, ca_file=ca_file, create_bucket=create_bucket, on_progress=on_progress,
        )
