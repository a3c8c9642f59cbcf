//! Image specs as the `rbd` CLI writes them: `[pool/[namespace/]]image[@snap]`.

use std::fmt;
use std::str::FromStr;

use crate::error::{Errno, Error};

/// The pool used when a spec names none (as `rbd`: `rbd_default_pool`, default `rbd`).
pub const DEFAULT_POOL: &str = "rbd";

/// `pool/namespace/image@snap`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageSpec {
    /// Pool name.
    pub pool: String,
    /// RADOS namespace ("" for the default one).
    pub namespace: String,
    /// Image name.
    pub image: String,
    /// Snapshot name, when given with `@`.
    pub snap: Option<String>,
}

impl ImageSpec {
    /// A spec in pool `pool`, default namespace.
    pub fn new(pool: &str, image: &str) -> ImageSpec {
        ImageSpec { pool: pool.into(), namespace: String::new(), image: image.into(), snap: None }
    }

    /// Fails with `EINVAL` and a pointer to stock `rbd clone` when a snapshot is named:
    /// standalone clones have HEAD parents.
    pub fn require_head(&self, role: &str) -> Result<(), Error> {
        match &self.snap {
            None => Ok(()),
            Some(s) => Err(Error::new(
                Errno::EINVAL,
                format!(
                    "{role} {self}: names snapshot '{s}'; standalone clones take an image (HEAD) as parent; to clone a snapshot use stock `rbd clone {self} ...`"
                ),
            )),
        }
    }
}

impl fmt::Display for ImageSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/", self.pool)?;
        if !self.namespace.is_empty() {
            write!(f, "{}/", self.namespace)?;
        }
        write!(f, "{}", self.image)?;
        if let Some(s) = &self.snap {
            write!(f, "@{s}")?;
        }
        Ok(())
    }
}

impl FromStr for ImageSpec {
    type Err = Error;

    fn from_str(s: &str) -> Result<ImageSpec, Error> {
        let bad = |why: &str| Error::new(Errno::EINVAL, format!("image spec '{s}': {why} (expected [pool/[namespace/]]image[@snap])"));
        let (path, snap) = match s.split_once('@') {
            Some((_, "")) => return Err(bad("empty snapshot name")),
            Some((p, sn)) => (p, Some(sn.to_string())),
            None => (s, None),
        };
        let parts: Vec<&str> = path.split('/').collect();
        let (pool, namespace, image) = match parts.as_slice() {
            [image] => (DEFAULT_POOL, "", *image),
            [pool, image] => (*pool, "", *image),
            [pool, ns, image] => (*pool, *ns, *image),
            _ => return Err(bad("too many '/'")),
        };
        if pool.is_empty() || image.is_empty() {
            return Err(bad("empty pool or image name"));
        }
        Ok(ImageSpec { pool: pool.into(), namespace: namespace.into(), image: image.into(), snap })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_like_rbd() {
        let s: ImageSpec = "img".parse().unwrap();
        assert_eq!((s.pool.as_str(), s.namespace.as_str(), s.image.as_str()), ("rbd", "", "img"));
        let s: ImageSpec = "p/ns/img@snap".parse().unwrap();
        assert_eq!(s.to_string(), "p/ns/img@snap");
        assert_eq!(s.snap.as_deref(), Some("snap"));
        let s: ImageSpec = "p/img".parse().unwrap();
        assert_eq!(s.to_string(), "p/img");
        for bad in ["", "/img", "p/", "a/b/c/d", "img@", "p//"] {
            assert_eq!(bad.parse::<ImageSpec>().unwrap_err().errno(), Errno::EINVAL, "{bad}");
        }
    }

    #[test]
    fn snapshot_parent_points_to_rbd_clone() {
        let s: ImageSpec = "rbd/base@s1".parse().unwrap();
        let e = s.require_head("parent").unwrap_err();
        assert_eq!(e.errno(), Errno::EINVAL);
        assert!(e.to_string().contains("rbd clone"), "{e}");
    }
}
