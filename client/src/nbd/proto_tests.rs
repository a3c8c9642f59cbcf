use proptest::prelude::*;

use super::*;

const LIM: Limits = Limits { size: 1 << 20, read_only: false, structured: true, allocation: true };

fn req(kind: u16, flags: u16, offset: u64, length: u32) -> Request {
    Request { flags, kind, handle: 7, offset, length }
}

fn request_bytes(r: &Request) -> [u8; REQUEST_LEN] {
    let mut b = [0u8; REQUEST_LEN];
    b[..4].copy_from_slice(&REQUEST_MAGIC.to_be_bytes());
    b[4..6].copy_from_slice(&r.flags.to_be_bytes());
    b[6..8].copy_from_slice(&r.kind.to_be_bytes());
    b[8..16].copy_from_slice(&r.handle.to_be_bytes());
    b[16..24].copy_from_slice(&r.offset.to_be_bytes());
    b[24..].copy_from_slice(&r.length.to_be_bytes());
    b
}

#[test]
fn greeting_is_nbdmagic_ihaveopt_fixed_newstyle() {
    let g = greeting();
    assert_eq!(&g[..8], b"NBDMAGIC");
    assert_eq!(&g[8..16], b"IHAVEOPT");
    assert_eq!(&g[16..], &[0, 3]);
}

#[test]
fn client_flags_need_fixed_newstyle_and_nothing_unknown() {
    assert_eq!(parse_client_flags([0, 0, 0, 1]), Ok(false));
    assert_eq!(parse_client_flags([0, 0, 0, 3]), Ok(true));
    assert!(parse_client_flags([0, 0, 0, 0]).is_err());
    assert!(parse_client_flags([0, 0, 0, 5]).is_err());
}

#[test]
fn go_with_name_and_info_requests() {
    let mut d = 4u32.to_be_bytes().to_vec();
    d.extend_from_slice(b"disk");
    d.extend_from_slice(&2u16.to_be_bytes());
    d.extend_from_slice(&info::BLOCK_SIZE.to_be_bytes());
    d.extend_from_slice(&info::NAME.to_be_bytes());
    assert_eq!(parse_option(opt::GO, &d), Ok(Opt::Info { go: true, name: b"disk".to_vec(), requests: vec![3, 1] }));
    // One byte short, or one too many: INVALID, not a panic.
    assert!(parse_option(opt::GO, &d[..d.len() - 1]).is_err());
    d.push(0);
    assert!(parse_option(opt::INFO, &d).is_err());
    // A name length past the payload.
    assert!(parse_option(opt::GO, &[0xff, 0xff, 0xff, 0xff]).is_err());
}

#[test]
fn meta_context_queries() {
    let mut d = 0u32.to_be_bytes().to_vec();
    d.extend_from_slice(&2u32.to_be_bytes());
    for q in [&b"base:allocation"[..], b"qemu:dirty-bitmap:x"] {
        d.extend_from_slice(&(q.len() as u32).to_be_bytes());
        d.extend_from_slice(q);
    }
    let o = parse_option(opt::SET_META_CONTEXT, &d).unwrap();
    let Opt::MetaContext { set: true, export, queries } = o else { panic!("{o:?}") };
    assert!(export.is_empty());
    assert!(query_matches(&queries[0], false) && !query_matches(&queries[1], true));
    assert!(query_matches(b"base:", true) && !query_matches(b"base:", false));
    // A count larger than what follows.
    d[7] = 3;
    assert!(parse_option(opt::LIST_META_CONTEXT, &d).is_err());
}

#[test]
fn unknown_options_and_starttls_are_unsupported() {
    assert_eq!(parse_option(opt::STARTTLS, &[]), Ok(Opt::Unknown(opt::STARTTLS)));
    assert_eq!(parse_option(999, &[1, 2, 3]), Ok(Opt::Unknown(999)));
    assert!(parse_option(opt::STRUCTURED_REPLY, &[0]).is_err(), "STRUCTURED_REPLY takes no payload");
}

#[test]
fn option_headers_and_requests_check_their_magic() {
    let mut h = [0u8; 16];
    h[..8].copy_from_slice(&IHAVEOPT.to_be_bytes());
    h[8..12].copy_from_slice(&opt::GO.to_be_bytes());
    h[12..].copy_from_slice(&9u32.to_be_bytes());
    assert_eq!(parse_option_header(h), Ok((opt::GO, 9)));
    h[0] ^= 1;
    assert!(matches!(parse_option_header(h), Err(ProtoError::BadMagic(_))));
    let r = req(cmd::WRITE, cflag::FUA, 4096, 512);
    let mut b = request_bytes(&r);
    assert_eq!(parse_request(b), Ok(r));
    b[3] ^= 1;
    assert!(matches!(parse_request(b), Err(ProtoError::BadMagic(_))));
}

#[test]
fn requests_are_checked_against_the_export() {
    let size = LIM.size;
    assert_eq!(validate(&req(cmd::READ, 0, 0, 4096), &LIM), Ok(Command::Read { off: 0, len: 4096, df: false }));
    assert_eq!(validate(&req(cmd::READ, 0, size - 1, 2), &LIM), Err(err::EINVAL));
    assert_eq!(validate(&req(cmd::READ, 0, u64::MAX, 2), &LIM), Err(err::EINVAL), "offset + length overflows");
    assert_eq!(validate(&req(cmd::WRITE, 0, size, 1), &LIM), Err(err::ENOSPC));
    assert_eq!(validate(&req(cmd::WRITE_ZEROES, 0, size - 1, 2), &LIM), Err(err::ENOSPC));
    assert_eq!(validate(&req(cmd::TRIM, 0, size - 1, 2), &LIM), Err(err::EINVAL));
    assert_eq!(validate(&req(cmd::READ, 0, 0, 0), &LIM), Err(err::EINVAL), "zero length");
    assert_eq!(validate(&req(cmd::READ, cflag::FUA, 0, 1), &LIM), Err(err::EINVAL), "FUA is not a read flag");
    assert_eq!(validate(&req(cmd::WRITE, 1 << 9, 0, 1), &LIM), Err(err::EINVAL), "unknown flag");
    assert_eq!(validate(&req(99, 0, 0, 1), &LIM), Err(err::EINVAL), "unknown command");
    assert_eq!(validate(&req(cmd::FLUSH, 0, 1, 0), &LIM), Err(err::EINVAL));
    assert_eq!(validate(&req(cmd::FLUSH, 0, 0, 0), &LIM), Ok(Command::Flush));
    assert_eq!(validate(&req(cmd::DISC, 0, 5, 5), &LIM), Ok(Command::Disconnect));
    let ro = Limits { read_only: true, ..LIM };
    assert_eq!(validate(&req(cmd::WRITE, 0, 0, 1), &ro), Err(err::EPERM));
    assert_eq!(validate(&req(cmd::TRIM, 0, 0, 1), &ro), Err(err::EPERM));
    assert!(validate(&req(cmd::READ, 0, 0, 1), &ro).is_ok());
    let simple = Limits { structured: false, allocation: false, ..LIM };
    assert_eq!(validate(&req(cmd::READ, cflag::DF, 0, 1), &simple), Err(err::EINVAL), "DF needs structured replies");
    assert_eq!(validate(&req(cmd::BLOCK_STATUS, 0, 0, 1), &simple), Err(err::EINVAL), "no context selected");
    assert_eq!(
        validate(&req(cmd::WRITE_ZEROES, cflag::NO_HOLE | cflag::FAST_ZERO, 0, 8), &LIM),
        Ok(Command::WriteZeroes { off: 0, len: 8, fua: false, no_hole: true, fast: true })
    );
    assert_eq!(req(cmd::WRITE, 0, 0, MAX_PAYLOAD + 1).payload_len(), None);
    assert_eq!(req(cmd::WRITE, 0, 0, 9).payload_len(), Some(9));
    assert_eq!(req(cmd::READ, 0, 0, 9).payload_len(), Some(0));
}

/// Walks the chunks of a structured reply: (flags, type, payload).
fn chunks(mut b: &[u8]) -> Vec<(u16, u16, Vec<u8>)> {
    let mut out = Vec::new();
    while !b.is_empty() {
        assert_eq!(&b[..4], &STRUCTURED_REPLY_MAGIC.to_be_bytes());
        let flags = u16::from_be_bytes([b[4], b[5]]);
        let kind = u16::from_be_bytes([b[6], b[7]]);
        assert_eq!(u64::from_be_bytes(b[8..16].try_into().unwrap()), 7);
        let len = u32::from_be_bytes(b[16..20].try_into().unwrap()) as usize;
        out.push((flags, kind, b[20..20 + len].to_vec()));
        b = &b[20 + len..];
    }
    out
}

#[test]
fn reads_send_zeros_as_holes_and_end_with_done() {
    let mut data = vec![0u8; 3 * 4096];
    data[4096] = 1;
    let c = chunks(&read_reply(7, 1 << 20, &data, false));
    let kinds: Vec<u16> = c.iter().map(|x| x.1).collect();
    assert_eq!(kinds, [reply::OFFSET_HOLE, reply::OFFSET_DATA, reply::OFFSET_HOLE]);
    assert_eq!(c.iter().map(|x| x.0).collect::<Vec<_>>(), [0, 0, reply::FLAG_DONE]);
    assert_eq!(&c[0].2, &[&(1u64 << 20).to_be_bytes()[..], &4096u32.to_be_bytes()].concat());
    assert_eq!(&c[1].2[..8], &((1u64 << 20) + 4096).to_be_bytes());
    assert_eq!(&c[1].2[8..], &data[4096..8192]);
    // DF: one data chunk, zeros included.
    let c = chunks(&read_reply(7, 0, &data, true));
    assert_eq!(c.len(), 1);
    assert_eq!((c[0].0, c[0].1, c[0].2.len()), (reply::FLAG_DONE, reply::OFFSET_DATA, 8 + data.len()));
}

#[test]
fn errors_and_block_status() {
    let c = chunks(&structured_error(7, err::EIO, "boom"));
    assert_eq!((c[0].0, c[0].1), (reply::FLAG_DONE, reply::ERROR));
    assert_eq!(c[0].2, [&5u32.to_be_bytes()[..], &4u16.to_be_bytes(), b"boom"].concat());
    let c = chunks(&block_status_reply(7, &[(4096, 0), (8192, 3)]));
    assert_eq!(c[0].2.len(), 4 + 16);
    assert_eq!(nbd_error(libc::EROFS), err::EPERM);
    assert_eq!(nbd_error(libc::ETIMEDOUT), err::EIO);
    assert_eq!(simple_reply(7, 22).len(), 16);
}

proptest! {
    /// Arbitrary payloads of every option decode to a value or an error, never a panic.
    #[test]
    fn options_never_panic(option in 0u32..16, data in proptest::collection::vec(any::<u8>(), 0..64)) {
        let _ = parse_option(option, &data);
    }

    /// Requests near the edges of the export (and anywhere in u64), every command and
    /// flag: `validate` answers without panicking, and what it accepts lies inside the export.
    #[test]
    fn edge_requests_stay_inside(
        kind in 0u16..10,
        flags in 0u16..32,
        offset in prop_oneof![0..LIM.size + 8192, LIM.size - 8192..LIM.size + 8192, u64::MAX - 8192..=u64::MAX, any::<u64>()],
        length in prop_oneof![0u32..8192, any::<u32>()],
        bad_magic in proptest::bool::weighted(0.05),
    ) {
        let mut b = request_bytes(&req(kind, flags, offset, length));
        if bad_magic {
            b[0] ^= 0x80;
        }
        check_request(b, !bad_magic)?;
    }
}

fn check_request(b: [u8; REQUEST_LEN], magic: bool) -> Result<(), TestCaseError> {
    {
        match parse_request(b) {
            Err(_) => prop_assert!(!magic),
            Ok(r) => {
                if let Ok(c) = validate(&r, &LIM) {
                    if !matches!(c, Command::Flush | Command::Disconnect) {
                        prop_assert!(r.offset + u64::from(r.length) <= LIM.size);
                    }
                }
            }
        }
    }
    Ok(())
}
