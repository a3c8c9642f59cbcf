//! `set_size`: stock `rbd.set_size` for children stock cannot decode.

use super::header::read_key;
use super::{cls_log, decode_input};
use crate::types::{header, ParentRecord};
use crate::{ClsContext, Codec, Errno};

/// `set_size` (RD|WR, on an image header). Input: u64 new size (as stock `rbd.set_size`).
/// Output: none.
///
/// Writes the `size` key and, when the image shrinks below its parent overlap, clamps the
/// overlap, like stock `set_size`, but reads the `parent` record with rbd_ext's v4 decoder:
/// stock cls_rbd cannot decode the compat-3 records of remote and S3 children (by design),
/// so their resizes come here. Data objects and object maps are the client's to trim.
///
/// Returns -EINVAL if the input does not decode; -ENOENT if the header object or its
/// `size` key does not exist; -EIO if `size` or `parent` does not decode; -errno on
/// storage failure.
pub(crate) fn set_size(ctx: &mut dyn ClsContext, input: &[u8], _out: &mut Vec<u8>) -> Result<(), Errno> {
    let size = decode_input(ctx, "set_size", u64::read_bytes(input))?;
    cls_log!(ctx, 20, "set_size size={size}");
    ctx.check_exists()?;
    let Some(old) = read_key::<u64>(ctx, header::SIZE)? else {
        cls_log!(ctx, 1, "set_size: no `size` key: not an image header");
        return Err(Errno::ENOENT);
    };
    let mut entries: Vec<(&str, Vec<u8>)> = Vec::new();
    if old != size {
        entries.push((header::SIZE, size.get_encoding()));
    }
    if let Some(mut p) = read_key::<ParentRecord>(ctx, header::PARENT)? {
        if p.head_overlap.is_some_and(|o| o > size) {
            cls_log!(ctx, 20, "set_size: clamping parent overlap {:?} to {size}", p.head_overlap);
            p.head_overlap = Some(size);
            entries.push((header::PARENT, p.get_encoding()));
        }
    }
    if entries.is_empty() {
        return Ok(());
    }
    let refs: Vec<(&str, &[u8])> = entries.iter().map(|(k, v)| (*k, v.as_slice())).collect();
    ctx.omap_set(&refs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::SnapId;
    use crate::methods::header::test_support::{image_header, run};
    use crate::types::ParentType;
    use crate::MemContext;

    fn remote_child(size: u64, overlap: u64) -> MemContext {
        let mut c = image_header(size);
        let p = ParentRecord {
            pool_id: 1,
            image_id: "abc".into(),
            snap_id: SnapId::NOSNAP,
            head_overlap: Some(overlap),
            parent_type: ParentType::RemoteStandalone,
            remote_cluster_name: "a".into(),
            remote_mon_hosts: vec!["127.0.0.1".into()],
            remote_client_name: "client.admin".into(),
            remote_secret_ref: "config://k".into(),
            pool_namespace: String::new(),
        };
        c.omap_set_one(header::PARENT, &p.get_encoding()).unwrap();
        c
    }

    fn stored(c: &MemContext) -> (u64, Option<u64>) {
        let o = c.omap();
        (u64::read_bytes(&o[header::SIZE]).unwrap(), o.get(header::PARENT).and_then(|p| ParentRecord::read_bytes(p).unwrap().head_overlap))
    }

    #[test]
    fn shrink_clamps_the_overlap_of_a_compat3_record_and_grow_keeps_it() {
        let mut c = remote_child(1000, 1000);
        run(&mut c, set_size, &600u64.get_encoding()).unwrap();
        assert_eq!(stored(&c), (600, Some(600)));
        run(&mut c, set_size, &2000u64.get_encoding()).unwrap();
        assert_eq!(stored(&c), (2000, Some(600)));
        // The rest of the record is kept (v4 fields survive the rewrite).
        let p = ParentRecord::read_bytes(&c.omap()[header::PARENT]).unwrap();
        assert_eq!(p.parent_type, ParentType::RemoteStandalone);
        assert_eq!(p.remote_secret_ref, "config://k");
    }

    #[test]
    fn errors() {
        let mut c = image_header(10);
        assert_eq!(run(&mut c, set_size, b"\x01").err(), Some(Errno::EINVAL));
        assert_eq!(MemContext::missing().call(set_size, &5u64.get_encoding()).err(), Some(Errno::ENOENT));
        let mut no_size = MemContext::existing();
        assert_eq!(run(&mut no_size, set_size, &5u64.get_encoding()).err(), Some(Errno::ENOENT));
        let mut bad = image_header(10);
        bad.omap_set_one(header::SIZE, b"\x01").unwrap();
        assert_eq!(run(&mut bad, set_size, &5u64.get_encoding()).err(), Some(Errno::EIO));
        let mut badp = image_header(10);
        badp.omap_set_one(header::PARENT, b"\x04\x09\x00\x00\x00\x00").unwrap();
        assert_eq!(run(&mut badp, set_size, &5u64.get_encoding()).err(), Some(Errno::EIO));
    }
}
