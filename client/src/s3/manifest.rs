//! The manifest published beside a raw S3 image (`<key>.manifest.json`, DESIGN.md §4): image
//! size, object size, the image's ETag, and per RADOS-sized object a SHA-256 or a zero flag.
//!
//! ```json
//! {"version":1,"image_size":9437184,"object_size":4194304,"etag":"...",
//!  "objects":[{"sha256":"9f86...","zero":false},{"sha256":null,"zero":true},...]}
//! ```
//!
//! Zero objects are never fetched; every fetched object is checked with [`Manifest::verify`]
//! before it is written back. The last object may be short (`image_size % object_size`); its
//! hash covers only the bytes that exist.

use std::io::Read;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::sigv4::hex;
use crate::error::{Errno, Error, Result};

/// The manifest format written by this version.
pub const MANIFEST_VERSION: u32 = 1;
/// Appended to the image key to name its manifest.
pub const MANIFEST_SUFFIX: &str = ".manifest.json";
/// Largest object size accepted (RBD's own maximum is 32 MiB).
const MAX_OBJECT_SIZE: u64 = 1 << 30;

/// The manifest key of the image stored at `image_key`.
pub fn manifest_key(image_key: &str) -> String {
    format!("{image_key}{MANIFEST_SUFFIX}")
}

/// A parsed or freshly built manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// Image size in bytes.
    pub image_size: u64,
    /// RADOS object size the image is cut into.
    pub object_size: u64,
    /// The S3 ETag of the raw image it describes (unquoted; empty until known).
    pub etag: String,
    /// Per object: its SHA-256, or `None` when it is all zeros.
    objects: Vec<Option<[u8; 32]>>,
}

#[derive(Serialize, Deserialize)]
struct Wire {
    version: u32,
    image_size: u64,
    object_size: u64,
    #[serde(default)]
    etag: String,
    objects: Vec<WireObject>,
}

#[derive(Serialize, Deserialize)]
struct WireObject {
    sha256: Option<String>,
    #[serde(default)]
    zero: bool,
}

impl Manifest {
    /// Reads `reader` to its end as a raw image and hashes it in `object_size` pieces.
    /// The ETag is left empty (set it once the upload has one). EINVAL for a bad object size,
    /// the read error's errno if reading fails.
    pub fn build(mut reader: impl Read, object_size: u64) -> Result<Manifest> {
        let mut b = ManifestBuilder::new(object_size)?;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let errno = e.raw_os_error().map(Errno).unwrap_or(Errno::EIO);
                    return Err(Error::new(errno, format!("manifest: reading the image at byte {}", b.image_size)).with(e));
                }
            };
            b.update(&buf[..n]);
        }
        Ok(b.finish())
    }

    /// Number of objects (`ceil(image_size / object_size)`).
    pub fn object_count(&self) -> u64 {
        self.objects.len() as u64
    }

    /// Byte length of object `object_no` (short for the last one), or `None` past the end.
    pub fn object_len(&self, object_no: u64) -> Option<u64> {
        if object_no >= self.object_count() {
            return None;
        }
        Some((self.image_size - object_no * self.object_size).min(self.object_size))
    }

    /// Whether object `object_no` is all zeros (never fetch it). `false` past the end.
    pub fn is_zero(&self, object_no: u64) -> bool {
        matches!(self.objects.get(object_no as usize), Some(None))
    }

    /// The SHA-256 of object `object_no`, `None` if it is a zero object or past the end.
    pub fn sha256(&self, object_no: u64) -> Option<[u8; 32]> {
        self.objects.get(object_no as usize).copied().flatten()
    }

    /// Checks fetched bytes of object `object_no`: the right length, and all zeros or the
    /// recorded SHA-256. EIO (naming the object and both hashes) on mismatch; EINVAL for
    /// an object number past the end.
    pub fn verify(&self, object_no: u64, data: &[u8]) -> Result<()> {
        let expect_len = self
            .object_len(object_no)
            .ok_or_else(|| Error::new(Errno::EINVAL, format!("manifest: object {object_no} is past the end ({} objects)", self.object_count())))?;
        if data.len() as u64 != expect_len {
            return Err(Error::new(Errno::EIO, format!("manifest: object {object_no}: {} bytes fetched, {expect_len} expected", data.len())));
        }
        let got = Sha256::digest(data);
        match self.objects[object_no as usize] {
            None if data.iter().all(|&b| b == 0) => Ok(()),
            None => Err(Error::new(Errno::EIO, format!("manifest: object {object_no}: expected all zeros, got data with sha256 {}", hex(&got)))),
            Some(want) if want[..] == got[..] => Ok(()),
            Some(want) => Err(Error::new(Errno::EIO, format!("manifest: object {object_no}: sha256 mismatch: expected {}, got {}", hex(&want), hex(&got)))),
        }
    }

    /// Serialises to one line of JSON.
    pub fn to_json(&self) -> String {
        let w = Wire {
            version: MANIFEST_VERSION,
            image_size: self.image_size,
            object_size: self.object_size,
            etag: self.etag.clone(),
            objects: self.objects.iter().map(|o| WireObject { sha256: o.map(|h| hex(&h)), zero: o.is_none() }).collect(),
        };
        serde_json::to_string(&w).expect("plain data serialises")
    }

    /// Parses and checks a manifest: EBADMSG if it is not one (bad JSON, a hash that is not
    /// 64 hex digits, an object count that does not match the sizes, zero flag and hash
    /// disagreeing), EOPNOTSUPP for a newer version.
    pub fn from_json(text: &[u8]) -> Result<Manifest> {
        let bad = |why: String| Error::new(Errno::EBADMSG, format!("manifest: {why}"));
        let w: Wire = serde_json::from_slice(text).map_err(|e| bad(format!("not a manifest: {e}")))?;
        if w.version != MANIFEST_VERSION {
            return Err(Error::new(
                Errno::EOPNOTSUPP,
                format!("manifest: version {} is not supported (this rbd-ext reads version {MANIFEST_VERSION})", w.version),
            ));
        }
        if w.object_size == 0 || w.object_size > MAX_OBJECT_SIZE {
            return Err(bad(format!("object_size {} out of range", w.object_size)));
        }
        let want = w.image_size.div_ceil(w.object_size);
        if w.objects.len() as u64 != want {
            return Err(bad(format!("{} objects listed, {want} expected for {} bytes in {}-byte objects", w.objects.len(), w.image_size, w.object_size)));
        }
        let mut objects = Vec::with_capacity(w.objects.len());
        for (i, o) in w.objects.into_iter().enumerate() {
            objects.push(match (o.zero, o.sha256) {
                (true, None) => None,
                (false, Some(h)) => Some(parse_hash(&h).ok_or_else(|| bad(format!("object {i}: bad sha256 {h:?}")))?),
                (true, Some(_)) => return Err(bad(format!("object {i}: zero with a sha256"))),
                (false, None) => return Err(bad(format!("object {i}: no sha256"))),
            });
        }
        Ok(Manifest { image_size: w.image_size, object_size: w.object_size, etag: w.etag, objects })
    }
}

/// Builds a [`Manifest`] from the image bytes as they stream past (e.g. while uploading).
#[derive(Debug)]
pub struct ManifestBuilder {
    object_size: u64,
    image_size: u64,
    hasher: Sha256,
    filled: u64,
    all_zero: bool,
    objects: Vec<Option<[u8; 32]>>,
}

impl ManifestBuilder {
    /// A builder for `object_size` objects (1 byte to 1 GiB, else EINVAL).
    pub fn new(object_size: u64) -> Result<ManifestBuilder> {
        if object_size == 0 || object_size > MAX_OBJECT_SIZE {
            return Err(Error::new(Errno::EINVAL, format!("manifest: object size {object_size} out of range")));
        }
        Ok(ManifestBuilder { object_size, image_size: 0, hasher: Sha256::new(), filled: 0, all_zero: true, objects: Vec::new() })
    }

    /// Feeds the next bytes of the image.
    pub fn update(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let take = ((self.object_size - self.filled) as usize).min(data.len());
            let (now, rest) = data.split_at(take);
            self.hasher.update(now);
            self.all_zero &= now.iter().all(|&b| b == 0);
            self.filled += take as u64;
            self.image_size += take as u64;
            data = rest;
            if self.filled == self.object_size {
                self.close_object();
            }
        }
    }

    fn close_object(&mut self) {
        let h: [u8; 32] = std::mem::take(&mut self.hasher).finalize().into();
        self.objects.push(if self.all_zero { None } else { Some(h) });
        self.filled = 0;
        self.all_zero = true;
    }

    /// The manifest of everything fed so far (ETag empty).
    pub fn finish(mut self) -> Manifest {
        if self.filled > 0 {
            self.close_object();
        }
        Manifest { image_size: self.image_size, object_size: self.object_size, etag: String::new(), objects: self.objects }
    }
}

fn parse_hash(s: &str) -> Option<[u8; 32]> {
    let b = s.as_bytes();
    if b.len() != 64 {
        return None;
    }
    let nib = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = nib(b[2 * i])? << 4 | nib(b[2 * i + 1])?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image() -> Vec<u8> {
        // 4 objects of 1 KiB + a 100-byte tail: data, zeros, data, zeros, data.
        let mut v = vec![0u8; 4 * 1024 + 100];
        v[..1024].iter_mut().enumerate().for_each(|(i, b)| *b = i as u8);
        v[2048] = 1;
        v[4096 + 99] = 9;
        v
    }

    #[test]
    fn build_marks_zeros_and_hashes_the_rest() {
        let img = image();
        let m = Manifest::build(&img[..], 1024).unwrap();
        assert_eq!((m.image_size, m.object_size, m.object_count()), (img.len() as u64, 1024, 5));
        assert_eq!((0..5).map(|i| m.is_zero(i)).collect::<Vec<_>>(), [false, true, false, true, false]);
        assert_eq!(m.object_len(4), Some(100));
        assert_eq!(m.object_len(5), None);
        assert_eq!(m.sha256(0).unwrap()[..], Sha256::digest(&img[..1024])[..]);
        assert_eq!(m.sha256(4).unwrap()[..], Sha256::digest(&img[4096..])[..]);
        for i in 0..5u64 {
            let a = (i * 1024) as usize;
            m.verify(i, &img[a..(a + 1024).min(img.len())]).unwrap();
        }
        // Fed in odd pieces, the builder agrees.
        let mut b = ManifestBuilder::new(1024).unwrap();
        for c in img.chunks(333) {
            b.update(c);
        }
        assert_eq!(b.finish(), m);
        // Empty and exact-multiple images.
        assert_eq!(Manifest::build(&[][..], 1024).unwrap().object_count(), 0);
        assert_eq!(Manifest::build(&img[..2048], 1024).unwrap().object_count(), 2);
        assert_eq!(ManifestBuilder::new(0).unwrap_err().errno(), Errno::EINVAL);
    }

    #[test]
    fn verify_detects_corruption() {
        let img = image();
        let m = Manifest::build(&img[..], 1024).unwrap();
        let mut bad = img[..1024].to_vec();
        bad[7] ^= 0xff;
        let e = m.verify(0, &bad).unwrap_err();
        assert_eq!(e.errno(), Errno::EIO);
        let msg = e.to_string();
        assert!(msg.contains("object 0") && msg.contains(&hex(&m.sha256(0).unwrap())) && msg.contains(&hex(&Sha256::digest(&bad))), "{msg}");
        // A zero object that comes back non-zero, a short object, an object past the end.
        assert_eq!(m.verify(1, &[1u8; 1024]).unwrap_err().errno(), Errno::EIO);
        assert_eq!(m.verify(0, &img[..1000]).unwrap_err().errno(), Errno::EIO);
        assert_eq!(m.verify(5, &[]).unwrap_err().errno(), Errno::EINVAL);
    }

    #[test]
    fn json_round_trip() {
        let mut m = Manifest::build(&image()[..], 1024).unwrap();
        m.etag = "abc-2".into();
        let j = m.to_json();
        assert!(j.starts_with(r#"{"version":1,"image_size":4196,"object_size":1024,"etag":"abc-2","objects":[{"sha256":""#), "{j}");
        assert!(j.contains(r#"{"sha256":null,"zero":true}"#), "{j}");
        assert_eq!(Manifest::from_json(j.as_bytes()).unwrap(), m);
        // Unknown fields are ignored; upper-case hex is accepted.
        let j2 = j.replacen(r#""version":1"#, r#""version":1,"future":[1]"#, 1);
        let h = hex(&m.sha256(0).unwrap());
        let j2 = j2.replacen(&h, &h.to_uppercase(), 1);
        assert_eq!(Manifest::from_json(j2.as_bytes()).unwrap(), m);
    }

    #[test]
    fn json_rejects_bad_manifests() {
        let good = Manifest::build(&image()[..], 1024).unwrap().to_json();
        let cases = [
            ("not json", Errno::EBADMSG),
            (r#"{"version":1}"#, Errno::EBADMSG),
            (&good.replace(r#""version":1"#, r#""version":2"#), Errno::EOPNOTSUPP),
            (&good.replace(r#""image_size":4196"#, r#""image_size":9000"#), Errno::EBADMSG),
            (&good.replace(r#""object_size":1024"#, r#""object_size":0"#), Errno::EBADMSG),
            (&good.replacen(r#"{"sha256":null,"zero":true}"#, r#"{"sha256":null,"zero":false}"#, 1), Errno::EBADMSG),
            (&good.replacen(r#""zero":false"#, r#""zero":true"#, 1), Errno::EBADMSG),
            (&good.replacen(r#"{"sha256":""#, r#"{"sha256":"zz"#, 1), Errno::EBADMSG),
        ];
        for (text, errno) in cases {
            assert_eq!(Manifest::from_json(text.as_bytes()).unwrap_err().errno(), errno, "{text}");
        }
    }

    #[test]
    fn keys() {
        assert_eq!(manifest_key("images/base.raw"), "images/base.raw.manifest.json");
    }
}
