"""Acceptance test of the Python module rbd_ext against a live cluster ($CEPH_CONF).

Run by tests/python_live.rs with /usr/bin/python3 in a venv (--system-site-packages, so
Debian's python3-rados and python3-rbd import) where `pip install ./python` put rbd_ext.

The Cinder "upload volume to image" flow, as a driver does it: python3-rbd creates and
writes the volume in one pool, rbd_ext clones it into another pool (made with python3-rados),
python3-rbd reads the image back; then children, parent protection, flatten with progress,
removal, and snapshots of a standalone clone (rbd_ext's read the parent; stock's is refused).
"""

import errno
import json
import os
import random
import tempfile
import unittest
import uuid

import rados
import rbd

import rbd_ext

MIB = 1 << 20
# Not a whole number of 4 MiB objects, so the last object is partial.
VOLUME_SIZE = 10 * MIB + 12345


def volume_data():
    """Deterministic content with holes: extents written at spread offsets."""
    rng = random.Random(12)
    extents = []
    for off in (0, 3 * MIB - 100, 5 * MIB, 9 * MIB + 7, VOLUME_SIZE - 4096):
        extents.append((off, bytes(rng.getrandbits(8) for _ in range(4096 + (off % 5000)))[: VOLUME_SIZE - off]))
    return extents


def read_all(ioctx, name):
    with rbd.Image(ioctx, name, read_only=True) as image:
        size = image.size()
        out = bytearray()
        while len(out) < size:
            out += image.read(len(out), min(4 * MIB, size - len(out)))
        return bytes(out)


class UploadVolumeToImage(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # As Cinder and Glance connect: the conf file and a client id.
        cls.cluster = rados.Rados(conffile=os.environ["CEPH_CONF"], rados_id="admin")
        cls.cluster.connect()
        tag = uuid.uuid4().hex[:8]
        cls.pools = ["py-volumes-" + tag, "py-images-" + tag]
        for pool in cls.pools:
            cls.cluster.create_pool(pool)
        cls.volumes = cls.cluster.open_ioctx(cls.pools[0])
        cls.images = cls.cluster.open_ioctx(cls.pools[1])
        for ioctx in (cls.volumes, cls.images):
            ioctx.application_enable("rbd")
        cls.volume = "volume-" + tag
        cls.image = "image-" + tag

    @classmethod
    def tearDownClass(cls):
        cls.volumes.close()
        cls.images.close()
        for pool in cls.pools:
            cls.cluster.delete_pool(pool)
        cls.cluster.shutdown()

    def test_upload_volume_to_image(self):
        ext = rbd_ext.RBDExt()

        # The volume, created and written by stock librbd (python3-rbd).
        rbd.RBD().create(self.volumes, self.volume, VOLUME_SIZE, old_format=False,
                         features=rbd.RBD_FEATURE_LAYERING | rbd.RBD_FEATURE_EXCLUSIVE_LOCK
                         | rbd.RBD_FEATURE_OBJECT_MAP | rbd.RBD_FEATURE_FAST_DIFF)
        with rbd.Image(self.volumes, self.volume) as vol:
            for off, data in volume_data():
                vol.write(data, off)
        expected = read_all(self.volumes, self.volume)
        self.assertNotEqual(expected, bytes(len(expected)))

        # Upload: a standalone clone in the images pool; stock librbd reads it back equal.
        ext.clone_standalone(self.volumes, self.volume, self.images, self.image)
        self.assertEqual(read_all(self.images, self.image), expected)
        with rbd.Image(self.images, self.image, read_only=True) as img:
            self.assertEqual(img.size(), VOLUME_SIZE)

        info = ext.info(self.images, self.image)
        self.assertEqual(info["size"], VOLUME_SIZE)
        parent = ext.parent_info(self.images, self.image)
        self.assertEqual((parent["pool_name"], parent["pool_namespace"], parent["image_name"]),
                         (self.pools[0], "", self.volume))
        self.assertEqual(parent["type"], "standalone")
        self.assertIsNone(parent["snap_name"])
        self.assertEqual(parent["overlap"], VOLUME_SIZE)

        # Children listed, across pools.
        self.assertEqual(ext.children(self.volumes, self.volume),
                         [{"pool": self.pools[1], "pool_namespace": "", "image": self.image}])

        # Errors as python-rbd's, carrying the errno.
        with self.assertRaises(rbd_ext.ImageExists) as cm:
            ext.clone_standalone(self.volumes, self.volume, self.images, self.image)
        self.assertEqual(cm.exception.errno, errno.EEXIST)
        with self.assertRaises(rbd_ext.ImageNotFound) as cm:
            ext.clone_standalone(self.volumes, "no-such-volume", self.images, "x-" + self.image)
        self.assertEqual(cm.exception.errno, errno.ENOENT)

        # Protection: the volume cannot be removed while the image depends on it.
        with self.assertRaises(rbd_ext.ImageBusy) as cm:
            ext.remove(self.volumes, self.volume)
        self.assertEqual(cm.exception.errno, errno.EBUSY)
        self.assertIsInstance(cm.exception, rbd_ext.Error)
        self.assertIsInstance(cm.exception, OSError)
        self.assertIn(self.image, str(cm.exception))
        # Stock tools are refused too (the parent's protection bits).
        with self.assertRaises(rbd.Error):
            rbd.RBD().remove(self.volumes, self.volume)

        # Flatten with python-rbd's progress callback shape.
        calls = []
        ext.flatten(self.images, self.image, on_progress=lambda offset, total: calls.append((offset, total)))
        self.assertTrue(calls, "the progress callback was never called")
        total = calls[-1][1]
        self.assertGreater(total, 0)
        self.assertEqual(calls[-1], (total, total))
        self.assertTrue(all(t == total for _, t in calls), calls)
        offsets = [o for o, _ in calls]
        self.assertEqual(offsets, sorted(offsets), "progress went backwards")

        # Flattened: no parent, no children, same content; both remove.
        with self.assertRaises(rbd_ext.ImageNotFound):
            ext.parent_info(self.images, self.image)
        self.assertEqual(ext.children(self.volumes, self.volume), [])
        self.assertEqual(read_all(self.images, self.image), expected)
        ext.remove(self.volumes, self.volume)
        ext.remove(self.images, self.image)
        with self.assertRaises(rbd_ext.ImageNotFound):
            ext.info(self.volumes, self.volume)
        self.assertNotIn(self.image, rbd.RBD().list(self.images))

    def test_clone_options(self):
        ext = rbd_ext.RBDExt()
        name = "opts-" + uuid.uuid4().hex[:8]
        rbd.RBD().create(self.volumes, name, 8 * MIB, old_format=False, features=rbd.RBD_FEATURE_LAYERING)
        with rbd.Image(self.volumes, name) as vol:
            vol.write(b"v" * 8192, 4 * MIB - 4096)
        # Data objects in another pool (librbd's data_pool), features as given.
        features = rbd.RBD_FEATURE_LAYERING | rbd.RBD_FEATURE_EXCLUSIVE_LOCK
        ext.clone_standalone(self.volumes, name, self.images, name, features=features, order=22,
                             data_pool=self.pools[0])
        info = ext.info(self.images, name)
        self.assertEqual(info["data_pool"], self.pools[0])
        self.assertEqual(info["features"] & ~rbd.RBD_FEATURE_DATA_POOL, features)
        with rbd.Image(self.images, name, read_only=True) as img:
            self.assertEqual(img.data_pool_id(), self.cluster.pool_lookup(self.pools[0]))
        self.assertEqual(read_all(self.images, name), read_all(self.volumes, name))
        # A standalone clone keeps its parent's object size.
        with self.assertRaises(rbd_ext.InvalidArgument) as cm:
            ext.clone_standalone(self.volumes, name, self.images, name + "-o", order=23)
        self.assertEqual(cm.exception.errno, errno.EINVAL)
        self.assertNotIn(name + "-o", rbd.RBD().list(self.images))
        ext.remove(self.images, name)
        ext.remove(self.volumes, name)

    def test_snapshot_of_a_standalone_clone_reads_the_parent(self):
        ext = rbd_ext.RBDExt()
        tag = uuid.uuid4().hex[:8]
        parent, child = "snap-parent-" + tag, "snap-child-" + tag
        size = 3 * 4 * MIB + 5000
        rbd.RBD().create(self.volumes, parent, size, old_format=False,
                         features=rbd.RBD_FEATURE_LAYERING | rbd.RBD_FEATURE_EXCLUSIVE_LOCK
                         | rbd.RBD_FEATURE_OBJECT_MAP | rbd.RBD_FEATURE_FAST_DIFF)
        rng = random.Random(21)
        expected = bytearray(size)
        with rbd.Image(self.volumes, parent) as img:
            for off in (0, 4 * MIB + 10, 2 * 4 * MIB + 3, size - 700):
                data = bytes(rng.getrandbits(8) for _ in range(700))
                img.write(data, off)
                expected[off:off + len(data)] = data
        ext.clone_standalone(self.volumes, parent, self.images, child)

        # The clone writes part of object 0 only; objects 1 and 2 stay its parent's.
        with rbd.Image(self.images, child) as img:
            img.write(b"c" * 300, 200)
        expected[200:500] = b"c" * 300
        ext.snap_create(self.images, child, "s1")
        # Written after the snapshot: object 1, inherited when it was taken.
        with rbd.Image(self.images, child) as img:
            img.write(b"n" * 100, 4 * MIB)

        with rbd.Image(self.images, child, snapshot="s1") as snap:
            at_snap = snap.read(0, size)
        parents = bytes(expected[4 * MIB:])
        self.assertNotEqual(parents, bytes(len(parents)))
        # Where the clone had not written: the parent's bytes (a stock snapshot reads zeros).
        self.assertEqual(at_snap[4 * MIB:], parents)
        self.assertEqual(at_snap, bytes(expected))

        with self.assertRaises(rbd_ext.ImageExists) as cm:
            ext.snap_create(self.images, child, "s1")
        self.assertEqual(cm.exception.errno, errno.EEXIST)
        for bad in ("", "a@b"):
            with self.assertRaises(rbd_ext.InvalidArgument) as cm:
                ext.snap_create(self.images, child, bad)
            self.assertEqual(cm.exception.errno, errno.EINVAL)
        with self.assertRaises(rbd_ext.ImageNotFound) as cm:
            ext.snap_create(self.images, "no-such-" + tag, "s1")
        self.assertEqual(cm.exception.errno, errno.ENOENT)

        # Stock create_snap is refused on a standalone clone (the snapshot guard), and makes none.
        with rbd.Image(self.images, child) as img:
            with self.assertRaises(rbd.Error) as cm:
                img.create_snap("stock")
            self.assertEqual(cm.exception.errno, errno.EDQUOT)
            user = [s["name"] for s in img.list_snaps() if s["namespace"] == rbd.RBD_SNAP_NAMESPACE_TYPE_USER]
            self.assertEqual(user, ["s1"])
            img.remove_snap("s1")
        ext.remove(self.images, child)
        ext.remove(self.volumes, parent)

    def test_progress_callback_exception_is_raised_after_the_flatten(self):
        ext = rbd_ext.RBDExt()
        name = "cb-" + uuid.uuid4().hex[:8]
        rbd.RBD().create(self.volumes, name, 3 * 4 * MIB, old_format=False, features=rbd.RBD_FEATURE_LAYERING)
        with rbd.Image(self.volumes, name) as vol:
            for n in range(3):
                vol.write(b"%d" % n * 512, n * 4 * MIB)
        ext.clone_standalone(self.volumes, name, self.volumes, name + "-c")
        calls = []

        def boom(offset, total):
            calls.append(offset)
            raise KeyError("from the callback")

        with self.assertRaises(KeyError):
            ext.flatten(self.volumes, name + "-c", on_progress=boom)
        self.assertEqual(calls, [0], "a callback that raised was called again")
        # The flatten itself finished.
        self.assertEqual(ext.children(self.volumes, name), [])
        ext.remove(self.volumes, name + "-c")
        ext.remove(self.volumes, name)

    def test_s3_verbs(self):
        # radosgw of the test cluster (`qa/cluster up --rgw` exports these).
        env = os.environ
        endpoint, region = env["RBD_EXT_S3_ENDPOINT"], env["RBD_EXT_S3_REGION"]
        access_key, secret_file = env["RBD_EXT_S3_ACCESS_KEY"], env["RBD_EXT_S3_SECRET_FILE"]
        ext = rbd_ext.RBDExt()
        tag = uuid.uuid4().hex[:8]
        source, golden, child = "s3src-" + tag, "golden-" + tag, "vm-" + tag
        bucket, key = "py-" + tag, "golden.raw"
        size = 2 * 4 * MIB + 5000
        rbd.RBD().create(self.volumes, source, size, old_format=False, features=rbd.RBD_FEATURE_LAYERING)
        rng = random.Random(7)
        expected = bytearray(size)
        with rbd.Image(self.volumes, source) as img:
            for off in (100, 4 * MIB + 3, size - 1000):
                data = bytes(rng.getrandbits(8) for _ in range(1000))
                img.write(data, off)
                expected[off:off + len(data)] = data

        # Publish the image to S3, with its manifest.
        calls = []
        m = ext.s3_publish(self.volumes, source, endpoint, bucket, key, region=region, access_key=access_key,
                           secret_key_file=secret_file, create_bucket=True,
                           on_progress=lambda o, t: calls.append((o, t)))
        self.assertEqual((m["bucket"], m["key"], m["image_size"], m["objects"]), (bucket, key, size, 3))
        self.assertTrue(calls and calls[-1][0] == calls[-1][1], calls)

        # Attach an image back-filled from it (the secret goes to the config-key store).
        ext.s3_attach(self.volumes, golden, endpoint, bucket, image_name=key, region=region,
                      access_key=access_key, secret_key_file=secret_file)
        checks = ext.s3_verify(self.volumes, golden)
        self.assertTrue(checks and all(isinstance(c, tuple) and len(c) == 2 for c in checks), checks)
        self.assertTrue(ext.info(self.volumes, golden)["s3_backed"])
        with self.assertRaises(rbd_ext.ImageNotFound):
            ext.parent_info(self.volumes, golden)

        # Clone it, then fill it from S3 completely.
        ext.clone_standalone(self.volumes, golden, self.volumes, child)
        self.assertEqual(ext.children(self.volumes, golden),
                         [{"pool": self.pools[0], "pool_namespace": "", "image": child}])
        calls = []
        report = ext.hydrate(self.volumes, golden, on_progress=lambda o, t: calls.append((o, t)))
        self.assertEqual(report["objects"], 3)
        self.assertTrue(calls and calls[-1][0] == calls[-1][1], calls)
        # The filled objects hold the published bytes (stock librbd cannot open an S3-backed
        # image, so its data objects are read directly).
        prefix = ext.info(self.volumes, golden)["block_name_prefix"]
        got = b"".join(self.volumes.read("%s.%016x" % (prefix, n), 4 * MIB).ljust(min(4 * MIB, size - n * 4 * MIB), b"\0")
                       for n in range(3))
        self.assertEqual(got, bytes(expected))

        with self.assertRaises(rbd_ext.ImageBusy):
            ext.remove(self.volumes, golden)
        for name in (child, golden, source):
            ext.remove(self.volumes, name)

    def test_the_connection_follows_the_rados_settings(self):
        # A read-only client, connected with name= (which python3-rados does not record)
        # and its keyring given through conf=: rbd_ext must act as that client, not as admin.
        entity = "client.py-ro-" + uuid.uuid4().hex[:8]
        cmd = {"prefix": "auth get-or-create", "entity": entity, "caps": ["mon", "profile rbd", "osd", "profile rbd-read-only"]}
        ret, keyring, outs = self.cluster.mon_command(json.dumps(cmd), b"")
        self.assertEqual(ret, 0, outs)
        with tempfile.NamedTemporaryFile(suffix=".keyring") as f:
            f.write(keyring)
            f.flush()
            ro = rados.Rados(name=entity, conffile=os.environ["CEPH_CONF"], conf={"keyring": f.name})
            ro.connect()
            try:
                with ro.open_ioctx(self.pools[0]) as ioctx:
                    with self.assertRaises(rbd_ext.ImageNotFound):
                        rbd_ext.RBDExt().info(ioctx, "no-such-image")
                    name = "ro-" + uuid.uuid4().hex[:8]
                    rbd.RBD().create(self.volumes, name, 4 * MIB, old_format=False, features=rbd.RBD_FEATURE_LAYERING)
                    try:
                        with self.assertRaises(rbd_ext.PermissionError) as cm:
                            rbd_ext.RBDExt().clone_standalone(ioctx, name, ioctx, name + "-c")
                        self.assertIn(cm.exception.errno, (errno.EPERM, errno.EACCES))
                    finally:
                        rbd.RBD().remove(self.volumes, name)
            finally:
                ro.shutdown()
                self.cluster.mon_command(json.dumps({"prefix": "auth rm", "entity": entity}), b"")
        with self.assertRaises(TypeError):
            rbd_ext.RBDExt().info("not an ioctx", "x")

if __name__ == "__main__":
    unittest.main(verbosity=2)
