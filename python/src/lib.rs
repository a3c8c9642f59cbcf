//! `rbd_ext._native`: the extension module under the Python package `rbd_ext`.
//!
//! The package (`rbd_ext/__init__.py`) turns python3-rados objects into connection settings
//! and image specs and calls the `Connection` methods here; this file converts arguments and
//! results between Python and Rust, maps errors to the package's exceptions and wraps Python
//! progress callbacks. Every library call goes through `bridge`, which runs it on a tokio
//! runtime with the GIL released. Panics do not cross into Python: PyO3 turns a panic in a
//! function it exports into `pyo3_runtime.PanicException`.

#![forbid(unsafe_code)]

mod bridge;

use std::sync::{Arc, Mutex};

use pyo3::create_exception;
use pyo3::exceptions::PyOSError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use rbd_ext::rados::Cluster;
use rbd_ext::s3_parent::PublishSource;
use rbd_ext::{Errno, ImageSpec};
use rbd_ext_cls::types::ParentType;

use bridge::Failure;

create_exception!(rbd_ext, Error, PyOSError, "Base of every rbd_ext error: an OSError whose errno is the failure's.");
create_exception!(rbd_ext, ImageNotFound, Error, "ENOENT: no such image (or pool, or parent).");
create_exception!(rbd_ext, ImageBusy, Error, "EBUSY: the image has standalone clones, or another client holds it.");
create_exception!(rbd_ext, ImageExists, Error, "EEXIST: an image of that name exists.");
create_exception!(rbd_ext, PermissionError, Error, "EPERM or EACCES: the client's caps (or S3's credentials) do not allow it.");
create_exception!(rbd_ext, InvalidArgument, Error, "EINVAL: an argument the operation cannot take.");
create_exception!(rbd_ext, ReadOnlyImage, Error, "EROFS: the image is read-only (e.g. a protected parent).");
create_exception!(rbd_ext, FunctionNotSupported, Error, "EOPNOTSUPP: not supported for this image (e.g. a remote parent's parent).");
create_exception!(rbd_ext, Timeout, Error, "ETIMEDOUT: a cluster or S3 did not answer in time.");

/// The exception for `errno`, as python-rbd maps its errnos.
fn exception(errno: Errno, message: String) -> PyErr {
    let args = (errno.0, message);
    match errno {
        Errno::ENOENT => ImageNotFound::new_err(args),
        Errno::EBUSY => ImageBusy::new_err(args),
        Errno::EEXIST => ImageExists::new_err(args),
        Errno::EPERM | Errno::EACCES => PermissionError::new_err(args),
        Errno::EINVAL => InvalidArgument::new_err(args),
        Errno::EROFS => ReadOnlyImage::new_err(args),
        Errno::EOPNOTSUPP => FunctionNotSupported::new_err(args),
        Errno::ETIMEDOUT => Timeout::new_err(args),
        _ => Error::new_err(args),
    }
}

fn to_py(f: Failure) -> PyErr {
    match f {
        // The message names the image or object and ends with the errno's name.
        Failure::Lib(e) => exception(e.errno(), e.to_string()),
        Failure::Own(errno, what) => exception(errno, format!("{what}: {errno}")),
    }
}

fn spec(pool: String, namespace: String, image: String) -> ImageSpec {
    ImageSpec { pool, namespace, image, snap: None }
}

/// A Python progress callback `on_progress(offset, total)` (python-rbd's shape) as the
/// library's `Fn(done, total)`: reports never go backwards, and the first exception the
/// callback raises stops further calls and is raised once the operation has ended.
struct PyProgress {
    callback: Option<Py<PyAny>>,
    state: Mutex<(u64, Option<PyErr>)>,
}

impl PyProgress {
    fn new(callback: Option<Py<PyAny>>) -> PyProgress {
        PyProgress { callback, state: Mutex::new((0, None)) }
    }

    fn report(&self, done: u64, total: u64) {
        let Some(cb) = &self.callback else { return };
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if st.1.is_some() || done < st.0 {
            return;
        }
        st.0 = done;
        // The lock is held across the call, so reports reach Python one at a time, in order.
        if let Err(e) = Python::with_gil(|py| cb.call1(py, (done, total)).map(drop)) {
            st.1 = Some(e);
        }
    }

    /// The callback's exception, if it raised one.
    fn raised(self) -> Option<PyErr> {
        self.state.into_inner().unwrap_or_else(|e| e.into_inner()).1
    }
}

/// Finishes an operation that took a progress callback: the operation's error first, then
/// the callback's.
fn finish<T>(r: bridge::Result<T>, p: PyProgress) -> PyResult<T> {
    let v = r.map_err(to_py)?;
    match p.raised() {
        Some(e) => Err(e),
        None => Ok(v),
    }
}

/// The module's own connection to a cluster (made from a python3-rados `Rados`'s settings by
/// the package; one per distinct settings).
#[pyclass(frozen, module = "rbd_ext._native")]
struct Connection {
    cluster: Arc<Cluster>,
}

#[pymethods]
impl Connection {
    /// Connects: `conf` (None: librados's search path), client `id`, `cluster_name`, then the
    /// `settings` (name, value) pairs over the conf file's.
    #[new]
    #[pyo3(signature = (conf, id, cluster_name, settings))]
    fn new(py: Python<'_>, conf: Option<String>, id: String, cluster_name: Option<String>, settings: Vec<(String, String)>) -> PyResult<Connection> {
        let cluster = bridge::connect(py, bridge::ConnectSettings { conf, id, cluster_name, settings }).map_err(to_py)?;
        Ok(Connection { cluster })
    }

    /// The cluster's fsid.
    fn fsid(&self, py: Python<'_>) -> PyResult<String> {
        bridge::fsid(py, &self.cluster).map_err(to_py)
    }

    /// The client name this connection authenticated as.
    fn user(&self) -> String {
        self.cluster.user().to_string()
    }

    #[pyo3(signature = (p_pool, p_namespace, p_name, c_pool, c_namespace, c_name, features=None, order=None, data_pool=None))]
    #[allow(clippy::too_many_arguments)]
    fn clone_standalone(
        &self,
        py: Python<'_>,
        p_pool: String,
        p_namespace: String,
        p_name: String,
        c_pool: String,
        c_namespace: String,
        c_name: String,
        features: Option<u64>,
        order: Option<u8>,
        data_pool: Option<String>,
    ) -> PyResult<()> {
        let (parent, child) = (spec(p_pool, p_namespace, p_name), spec(c_pool, c_namespace, c_name));
        bridge::clone_standalone(py, &self.cluster, parent, child, bridge::CloneArgs { features, order, data_pool }).map_err(to_py)
    }

    /// Children as python-rbd's `list_children2` entries: dicts with `pool`,
    /// `pool_namespace`, `image`.
    fn children<'py>(&self, py: Python<'py>, pool: String, namespace: String, name: String) -> PyResult<Bound<'py, PyList>> {
        let kids = bridge::children(py, &self.cluster, spec(pool, namespace, name)).map_err(to_py)?;
        let list = PyList::empty(py);
        for c in kids.children {
            let d = PyDict::new(py);
            d.set_item("pool", c.pool)?;
            d.set_item("pool_namespace", c.namespace)?;
            d.set_item("image", c.image)?;
            list.append(d)?;
        }
        Ok(list)
    }

    fn remove(&self, py: Python<'_>, pool: String, namespace: String, name: String) -> PyResult<()> {
        bridge::remove(py, &self.cluster, spec(pool, namespace, name)).map_err(to_py)
    }

    fn snap_create(&self, py: Python<'_>, pool: String, namespace: String, name: String, snap_name: String) -> PyResult<()> {
        let spec = ImageSpec { snap: Some(snap_name), ..spec(pool, namespace, name) };
        bridge::snap_create(py, &self.cluster, spec).map_err(to_py)
    }

    #[pyo3(signature = (pool, namespace, name, on_progress=None))]
    fn flatten(&self, py: Python<'_>, pool: String, namespace: String, name: String, on_progress: Option<Py<PyAny>>) -> PyResult<()> {
        let p = PyProgress::new(on_progress);
        let r = bridge::flatten(py, &self.cluster, spec(pool, namespace, name), &|d, t| p.report(d, t));
        finish(r, p)
    }

    /// The image's facts (python-rbd's `stat()` keys and more), with `parent` a dict or None.
    fn info<'py>(&self, py: Python<'py>, pool: String, namespace: String, name: String) -> PyResult<Bound<'py, PyDict>> {
        let i = bridge::info(py, &self.cluster, spec(pool, namespace, name)).map_err(to_py)?;
        let h = &i.info.header;
        let d = PyDict::new(py);
        d.set_item("name", &i.info.spec.image)?;
        d.set_item("id", &i.info.id)?;
        d.set_item("size", h.size)?;
        d.set_item("obj_size", h.object_size())?;
        d.set_item("num_objs", h.object_count())?;
        d.set_item("order", h.order)?;
        d.set_item("block_name_prefix", &h.object_prefix)?;
        d.set_item("features", h.features)?;
        d.set_item("data_pool", i.data_pool)?;
        // An S3-backed image's record names its data source, not a parent image.
        d.set_item("s3_backed", h.parent.as_ref().is_some_and(|p| p.parent_type == ParentType::S3Source))?;
        let parent = match (&h.parent, &i.info.parent) {
            (Some(rec), Some(p)) if rec.parent_type != ParentType::S3Source => {
                let pd = PyDict::new(py);
                pd.set_item("pool_name", &p.pool)?;
                pd.set_item("pool_namespace", &p.namespace)?;
                pd.set_item("image_name", &p.image)?;
                pd.set_item("image_id", &rec.image_id)?;
                // A standalone parent is its image's HEAD: no snapshot.
                pd.set_item("snap_name", p.snap.clone())?;
                pd.set_item("type", rec.parent_type.as_str())?;
                pd.set_item("overlap", h.overlap())?;
                pd.into_any()
            }
            _ => py.None().into_bound(py),
        };
        d.set_item("parent", parent)?;
        Ok(d)
    }

    #[pyo3(signature = (pool, namespace, name, endpoint, bucket, region=None, image_name=None, prefix=None, access_key=None,
        secret_key_ref=None, secret_key_file=None, anonymous=false, replace_secret=false, size=None, order=None, ca_file=None,
        timeout_ms=None, retries=None))]
    #[allow(clippy::too_many_arguments)]
    fn s3_attach(
        &self,
        py: Python<'_>,
        pool: String,
        namespace: String,
        name: String,
        endpoint: String,
        bucket: String,
        region: Option<String>,
        image_name: Option<String>,
        prefix: Option<String>,
        access_key: Option<String>,
        secret_key_ref: Option<String>,
        secret_key_file: Option<String>,
        anonymous: bool,
        replace_secret: bool,
        size: Option<u64>,
        order: Option<u8>,
        ca_file: Option<String>,
        timeout_ms: Option<u64>,
        retries: Option<u32>,
    ) -> PyResult<()> {
        let a = bridge::AttachArgs {
            endpoint,
            bucket,
            region,
            image_name,
            prefix,
            access_key,
            secret_key_ref,
            secret_key_file,
            anonymous,
            replace_secret,
            size,
            order,
            ca_file,
            timeout_ms,
            retries,
        };
        bridge::s3_attach(py, &self.cluster, spec(pool, namespace, name), a).map_err(to_py)
    }

    /// The checks passed, as (check, result) pairs; a failed check raises.
    fn s3_verify(&self, py: Python<'_>, pool: String, namespace: String, name: String) -> PyResult<Vec<(String, String)>> {
        Ok(bridge::s3_verify(py, &self.cluster, spec(pool, namespace, name)).map_err(to_py)?.checks)
    }

    #[pyo3(signature = (pool, namespace, name, parallel=16, on_progress=None))]
    fn hydrate<'py>(
        &self,
        py: Python<'py>,
        pool: String,
        namespace: String,
        name: String,
        parallel: usize,
        on_progress: Option<Py<PyAny>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let p = PyProgress::new(on_progress);
        let r = bridge::hydrate(py, &self.cluster, spec(pool, namespace, name), parallel.max(1), &|d, t| p.report(d, t));
        let r = finish(r, p)?;
        let d = PyDict::new(py);
        d.set_item("objects", r.objects)?;
        d.set_item("bytes", r.bytes)?;
        d.set_item("seconds", r.seconds)?;
        Ok(d)
    }

    /// Publishes image `pool/namespace/name`, or the file `path` when given.
    #[pyo3(signature = (pool, namespace, name, path, endpoint, bucket, key, region=None, access_key=None, secret_key_file=None,
        secret_key_ref=None, object_size=4194304, ca_file=None, create_bucket=false, on_progress=None))]
    #[allow(clippy::too_many_arguments)]
    fn s3_publish<'py>(
        &self,
        py: Python<'py>,
        pool: String,
        namespace: String,
        name: String,
        path: Option<String>,
        endpoint: String,
        bucket: String,
        key: String,
        region: Option<String>,
        access_key: Option<String>,
        secret_key_file: Option<String>,
        secret_key_ref: Option<String>,
        object_size: u64,
        ca_file: Option<String>,
        create_bucket: bool,
        on_progress: Option<Py<PyAny>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let source = match path {
            Some(p) => PublishSource::File(p),
            None => PublishSource::Image(spec(pool, namespace, name)),
        };
        let a = bridge::PublishArgs {
            source,
            endpoint,
            region: region.unwrap_or_else(|| "us-east-1".into()),
            bucket: bucket.clone(),
            key: key.clone(),
            access_key,
            secret_key_file,
            secret_key_ref,
            object_size,
            ca_file,
            create_bucket,
        };
        let p = PyProgress::new(on_progress);
        let r = bridge::s3_publish(py, &self.cluster, a, &|d, t| p.report(d, t));
        let m = finish(r, p)?;
        let d = PyDict::new(py);
        d.set_item("bucket", bucket)?;
        d.set_item("key", &key)?;
        d.set_item("manifest", rbd_ext::s3::manifest_key(&key))?;
        d.set_item("image_size", m.image_size)?;
        d.set_item("object_size", m.object_size)?;
        d.set_item("objects", m.object_count())?;
        d.set_item("zero_objects", (0..m.object_count()).filter(|n| m.is_zero(*n)).count())?;
        d.set_item("etag", &m.etag)?;
        Ok(d)
    }
}

/// The extension module.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add_class::<Connection>()?;
    m.add("Error", py.get_type::<Error>())?;
    m.add("ImageNotFound", py.get_type::<ImageNotFound>())?;
    m.add("ImageBusy", py.get_type::<ImageBusy>())?;
    m.add("ImageExists", py.get_type::<ImageExists>())?;
    m.add("PermissionError", py.get_type::<PermissionError>())?;
    m.add("InvalidArgument", py.get_type::<InvalidArgument>())?;
    m.add("ReadOnlyImage", py.get_type::<ReadOnlyImage>())?;
    m.add("FunctionNotSupported", py.get_type::<FunctionNotSupported>())?;
    m.add("Timeout", py.get_type::<Timeout>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
