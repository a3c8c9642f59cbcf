//! The NBD wire format (the NBD project's `doc/proto.md`): fixed newstyle handshake,
//! options, requests and (simple and structured) replies. Pure: no I/O, no image; the
//! server in `server` feeds it bytes and writes what it returns.
//!
//! Everything on the wire is big-endian. Decoders never panic: a short or malformed
//! buffer is an `Err`, and what the server does with it (an error reply, or closing the
//! connection) is decided by the caller from the error's kind.

/// `NBDMAGIC`, the first 8 bytes the server sends.
pub const NBD_MAGIC: u64 = 0x4e42_444d_4147_4943;
/// `IHAVEOPT`: newstyle negotiation, and the prefix of every option the client sends.
pub const IHAVEOPT: u64 = 0x4948_4156_454f_5054;
/// The magic of every option reply.
pub const OPT_REPLY_MAGIC: u64 = 0x0003_e889_0455_65a9;
/// The magic of a request.
pub const REQUEST_MAGIC: u32 = 0x2560_9513;
/// The magic of a simple reply.
pub const SIMPLE_REPLY_MAGIC: u32 = 0x6744_6698;
/// The magic of a structured reply chunk.
pub const STRUCTURED_REPLY_MAGIC: u32 = 0x668e_33ef;

/// Handshake flags (server to client).
pub mod handshake {
    /// Fixed newstyle negotiation.
    pub const FIXED_NEWSTYLE: u16 = 1 << 0;
    /// The client may ask that the 124 zero bytes after NBD_OPT_EXPORT_NAME be left out.
    pub const NO_ZEROES: u16 = 1 << 1;
    /// Client flag: the client speaks fixed newstyle.
    pub const C_FIXED_NEWSTYLE: u32 = 1 << 0;
    /// Client flag: leave out the zero padding.
    pub const C_NO_ZEROES: u32 = 1 << 1;
}

/// Option numbers.
pub mod opt {
    /// Old-style selection of an export: no reply on success.
    pub const EXPORT_NAME: u32 = 1;
    /// End negotiation.
    pub const ABORT: u32 = 2;
    /// List the exports.
    pub const LIST: u32 = 3;
    /// TLS (not offered).
    pub const STARTTLS: u32 = 5;
    /// Describe an export.
    pub const INFO: u32 = 6;
    /// Describe an export and enter the transmission phase.
    pub const GO: u32 = 7;
    /// Structured replies.
    pub const STRUCTURED_REPLY: u32 = 8;
    /// List metadata contexts.
    pub const LIST_META_CONTEXT: u32 = 9;
    /// Select metadata contexts.
    pub const SET_META_CONTEXT: u32 = 10;
}

/// Option reply types.
pub mod rep {
    /// Done.
    pub const ACK: u32 = 1;
    /// One export of a LIST.
    pub const SERVER: u32 = 2;
    /// One piece of information of INFO / GO.
    pub const INFO: u32 = 3;
    /// One metadata context.
    pub const META_CONTEXT: u32 = 4;
    /// The error bit.
    pub const FLAG_ERROR: u32 = 1 << 31;
    /// Unknown option.
    pub const ERR_UNSUP: u32 = FLAG_ERROR | 1;
    /// Forbidden by policy.
    pub const ERR_POLICY: u32 = FLAG_ERROR | 2;
    /// Malformed option.
    pub const ERR_INVALID: u32 = FLAG_ERROR | 3;
    /// No such export.
    pub const ERR_UNKNOWN: u32 = FLAG_ERROR | 6;
    /// The server is going down.
    pub const ERR_SHUTDOWN: u32 = FLAG_ERROR | 7;
    /// Too big a request.
    pub const ERR_TOO_BIG: u32 = FLAG_ERROR | 9;
}

/// NBD_INFO types.
pub mod info {
    /// Size and transmission flags.
    pub const EXPORT: u16 = 0;
    /// The export's name.
    pub const NAME: u16 = 1;
    /// A description.
    pub const DESCRIPTION: u16 = 2;
    /// Block size constraints.
    pub const BLOCK_SIZE: u16 = 3;
}

/// Transmission flags.
pub mod tflag {
    /// Always set.
    pub const HAS_FLAGS: u16 = 1 << 0;
    /// Writes are refused.
    pub const READ_ONLY: u16 = 1 << 1;
    /// NBD_CMD_FLUSH.
    pub const SEND_FLUSH: u16 = 1 << 2;
    /// NBD_CMD_FLAG_FUA.
    pub const SEND_FUA: u16 = 1 << 3;
    /// NBD_CMD_TRIM.
    pub const SEND_TRIM: u16 = 1 << 5;
    /// NBD_CMD_WRITE_ZEROES.
    pub const SEND_WRITE_ZEROES: u16 = 1 << 6;
    /// NBD_CMD_FLAG_DF.
    pub const SEND_DF: u16 = 1 << 7;
    /// A flush on one connection covers the writes of every connection.
    pub const CAN_MULTI_CONN: u16 = 1 << 8;
    /// NBD_CMD_FLAG_FAST_ZERO.
    pub const SEND_FAST_ZERO: u16 = 1 << 11;
}

/// Command types.
pub mod cmd {
    /// Read.
    pub const READ: u16 = 0;
    /// Write.
    pub const WRITE: u16 = 1;
    /// Disconnect.
    pub const DISC: u16 = 2;
    /// Flush.
    pub const FLUSH: u16 = 3;
    /// Trim (discard).
    pub const TRIM: u16 = 4;
    /// Write zeroes.
    pub const WRITE_ZEROES: u16 = 6;
    /// Block status.
    pub const BLOCK_STATUS: u16 = 7;
}

/// Command flags.
pub mod cflag {
    /// Force unit access.
    pub const FUA: u16 = 1 << 0;
    /// WRITE_ZEROES: do not punch a hole.
    pub const NO_HOLE: u16 = 1 << 1;
    /// READ: one data chunk, do not fragment.
    pub const DF: u16 = 1 << 2;
    /// BLOCK_STATUS: one extent only.
    pub const REQ_ONE: u16 = 1 << 3;
    /// WRITE_ZEROES: fail fast rather than be slower than a write.
    pub const FAST_ZERO: u16 = 1 << 4;
}

/// Structured reply chunk types and flags.
pub mod reply {
    /// Last chunk of a reply.
    pub const FLAG_DONE: u16 = 1 << 0;
    /// No payload.
    pub const NONE: u16 = 0;
    /// Data at an offset.
    pub const OFFSET_DATA: u16 = 1;
    /// Zeros at an offset.
    pub const OFFSET_HOLE: u16 = 2;
    /// Block status descriptors of one context.
    pub const BLOCK_STATUS: u16 = 5;
    /// An error for the whole request.
    pub const ERROR: u16 = (1 << 15) | 1;
}

/// base:allocation states.
pub mod state {
    /// Not allocated.
    pub const HOLE: u32 = 1 << 0;
    /// Reads as zeros.
    pub const ZERO: u32 = 1 << 1;
}

/// NBD error values (the Linux errno numbers the protocol allows).
pub mod err {
    /// Operation not permitted (a write to a read-only export).
    pub const EPERM: u32 = 1;
    /// I/O error.
    pub const EIO: u32 = 5;
    /// Out of memory.
    pub const ENOMEM: u32 = 12;
    /// Invalid argument.
    pub const EINVAL: u32 = 22;
    /// No space left (a write past the end).
    pub const ENOSPC: u32 = 28;
    /// Value too large.
    pub const EOVERFLOW: u32 = 75;
    /// Not supported (a FAST_ZERO that would be slow).
    pub const ENOTSUP: u32 = 95;
    /// The server is shutting down.
    pub const ESHUTDOWN: u32 = 108;
}

/// The one metadata context served.
pub const BASE_ALLOCATION: &str = "base:allocation";
/// Its id on the wire.
pub const BASE_ALLOCATION_ID: u32 = 1;

/// Largest option payload read; anything longer closes the connection (names are at most
/// 4096 bytes, and a query list has no business being longer).
pub const MAX_OPTION_LEN: u32 = 64 * 1024;
/// Largest READ / WRITE payload: the maximum block size advertised.
pub const MAX_PAYLOAD: u32 = 32 * 1024 * 1024;
/// Preferred block size advertised (a page; smaller writes of a clone still work).
pub const PREFERRED_BLOCK: u32 = 4096;

/// The server's greeting: magic, IHAVEOPT, handshake flags.
pub fn greeting() -> [u8; 18] {
    let mut b = [0u8; 18];
    b[..8].copy_from_slice(&NBD_MAGIC.to_be_bytes());
    b[8..16].copy_from_slice(&IHAVEOPT.to_be_bytes());
    b[16..].copy_from_slice(&(handshake::FIXED_NEWSTYLE | handshake::NO_ZEROES).to_be_bytes());
    b
}

/// Why a frame cannot be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtoError {
    /// A magic number other than the expected one: the stream cannot be resynchronised.
    #[error("bad magic 0x{0:x}")]
    BadMagic(u64),
    /// The client's flags lack fixed newstyle, or hold unknown bits.
    #[error("client flags 0x{0:x} not supported")]
    ClientFlags(u32),
    /// The payload is shorter or longer than its fields say.
    #[error("malformed {0}")]
    Malformed(&'static str),
}

/// A cursor over a borrowed slice (rustls' `Reader`, big-endian).
struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf, at: 0 }
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.buf.len())?;
        let s = &self.buf[self.at..end];
        self.at = end;
        Some(s)
    }

    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Option<u32> {
        self.take(4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Option<u64> {
        self.take(8).map(|b| u64::from_be_bytes(b.try_into().unwrap_or_default()))
    }

    /// A u32 length, then that many bytes.
    fn string(&mut self) -> Option<&'a [u8]> {
        let n = self.u32()?;
        self.take(n as usize)
    }

    fn is_empty(&self) -> bool {
        self.at == self.buf.len()
    }
}

/// The client's flags after the greeting; returns whether it asked for no zero padding.
pub fn parse_client_flags(b: [u8; 4]) -> Result<bool, ProtoError> {
    let f = u32::from_be_bytes(b);
    let known = handshake::C_FIXED_NEWSTYLE | handshake::C_NO_ZEROES;
    if f & handshake::C_FIXED_NEWSTYLE == 0 || f & !known != 0 {
        return Err(ProtoError::ClientFlags(f));
    }
    Ok(f & handshake::C_NO_ZEROES != 0)
}

/// The 16-byte header of an option: (option, payload length).
pub fn parse_option_header(b: [u8; 16]) -> Result<(u32, u32), ProtoError> {
    let mut r = Reader::new(&b);
    let magic = r.u64().unwrap_or_default();
    if magic != IHAVEOPT {
        return Err(ProtoError::BadMagic(magic));
    }
    Ok((r.u32().unwrap_or_default(), r.u32().unwrap_or_default()))
}

/// A decoded option.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Opt {
    /// NBD_OPT_EXPORT_NAME with the name.
    ExportName(Vec<u8>),
    /// NBD_OPT_ABORT.
    Abort,
    /// NBD_OPT_LIST.
    List,
    /// NBD_OPT_INFO (`go` false) or NBD_OPT_GO: the export and the information asked for.
    Info {
        /// GO rather than INFO.
        go: bool,
        /// Export name.
        name: Vec<u8>,
        /// NBD_INFO types requested.
        requests: Vec<u16>,
    },
    /// NBD_OPT_STRUCTURED_REPLY.
    StructuredReply,
    /// NBD_OPT_LIST_META_CONTEXT (`set` false) or NBD_OPT_SET_META_CONTEXT.
    MetaContext {
        /// SET rather than LIST.
        set: bool,
        /// Export name.
        export: Vec<u8>,
        /// Queries (`base:allocation`, `base:`...).
        queries: Vec<Vec<u8>>,
    },
    /// Any other option (STARTTLS included): unsupported.
    Unknown(u32),
}

/// Decodes option `option`'s payload. `Err(Malformed)` is answered with
/// NBD_REP_ERR_INVALID; the connection goes on.
pub fn parse_option(option: u32, data: &[u8]) -> Result<Opt, ProtoError> {
    let mut r = Reader::new(data);
    let o = match option {
        opt::EXPORT_NAME => return Ok(Opt::ExportName(data.to_vec())),
        opt::ABORT => Opt::Abort,
        opt::LIST => Opt::List,
        opt::STRUCTURED_REPLY => Opt::StructuredReply,
        opt::INFO | opt::GO => {
            let name = r.string().ok_or(ProtoError::Malformed("export name"))?.to_vec();
            let n = r.u16().ok_or(ProtoError::Malformed("info request count"))?;
            let requests = (0..n).map(|_| r.u16()).collect::<Option<Vec<u16>>>().ok_or(ProtoError::Malformed("info requests"))?;
            Opt::Info { go: option == opt::GO, name, requests }
        }
        opt::LIST_META_CONTEXT | opt::SET_META_CONTEXT => {
            let export = r.string().ok_or(ProtoError::Malformed("export name"))?.to_vec();
            let n = r.u32().ok_or(ProtoError::Malformed("query count"))?;
            let mut queries = Vec::new();
            for _ in 0..n {
                queries.push(r.string().ok_or(ProtoError::Malformed("query"))?.to_vec());
            }
            Opt::MetaContext { set: option == opt::SET_META_CONTEXT, export, queries }
        }
        other => return Ok(Opt::Unknown(other)),
    };
    if !r.is_empty() {
        return Err(ProtoError::Malformed("option payload length"));
    }
    Ok(o)
}

/// Whether a metadata context query selects `base:allocation`: the exact name, or for a
/// LIST the whole `base:` namespace.
pub fn query_matches(query: &[u8], list: bool) -> bool {
    query == BASE_ALLOCATION.as_bytes() || (list && query == b"base:")
}

/// One option reply.
pub fn option_reply(option: u32, reply_type: u32, data: &[u8]) -> Vec<u8> {
    let mut b = Vec::with_capacity(20 + data.len());
    b.extend_from_slice(&OPT_REPLY_MAGIC.to_be_bytes());
    b.extend_from_slice(&option.to_be_bytes());
    b.extend_from_slice(&reply_type.to_be_bytes());
    b.extend_from_slice(&(data.len() as u32).to_be_bytes());
    b.extend_from_slice(data);
    b
}

/// An error reply with a message for people.
pub fn option_error(option: u32, error: u32, message: &str) -> Vec<u8> {
    option_reply(option, error, message.as_bytes())
}

/// NBD_REP_SERVER for LIST.
pub fn rep_server(name: &str) -> Vec<u8> {
    let mut d = (name.len() as u32).to_be_bytes().to_vec();
    d.extend_from_slice(name.as_bytes());
    option_reply(opt::LIST, rep::SERVER, &d)
}

/// NBD_INFO_EXPORT: size and transmission flags.
pub fn info_export(option: u32, size: u64, flags: u16) -> Vec<u8> {
    let mut d = info::EXPORT.to_be_bytes().to_vec();
    d.extend_from_slice(&size.to_be_bytes());
    d.extend_from_slice(&flags.to_be_bytes());
    option_reply(option, rep::INFO, &d)
}

/// NBD_INFO_NAME.
pub fn info_name(option: u32, name: &str) -> Vec<u8> {
    let mut d = info::NAME.to_be_bytes().to_vec();
    d.extend_from_slice(name.as_bytes());
    option_reply(option, rep::INFO, &d)
}

/// NBD_INFO_BLOCK_SIZE: any byte offset works (minimum 1), a page is preferred, and
/// READ/WRITE payloads are at most [`MAX_PAYLOAD`].
pub fn info_block_size(option: u32) -> Vec<u8> {
    let mut d = info::BLOCK_SIZE.to_be_bytes().to_vec();
    for v in [1u32, PREFERRED_BLOCK, MAX_PAYLOAD] {
        d.extend_from_slice(&v.to_be_bytes());
    }
    option_reply(option, rep::INFO, &d)
}

/// NBD_REP_META_CONTEXT naming `base:allocation`.
pub fn rep_meta_context(option: u32) -> Vec<u8> {
    let mut d = BASE_ALLOCATION_ID.to_be_bytes().to_vec();
    d.extend_from_slice(BASE_ALLOCATION.as_bytes());
    option_reply(option, rep::META_CONTEXT, &d)
}

/// The reply to NBD_OPT_EXPORT_NAME: size, flags and (unless refused) 124 zero bytes.
pub fn export_name_reply(size: u64, flags: u16, no_zeroes: bool) -> Vec<u8> {
    let mut b = size.to_be_bytes().to_vec();
    b.extend_from_slice(&flags.to_be_bytes());
    if !no_zeroes {
        b.extend_from_slice(&[0u8; 124]);
    }
    b
}

/// Size of a request header.
pub const REQUEST_LEN: usize = 28;

/// A request header (a WRITE's payload follows it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request {
    /// Command flags.
    pub flags: u16,
    /// Command type.
    pub kind: u16,
    /// The client's handle (cookie), echoed in the reply.
    pub handle: u64,
    /// Offset.
    pub offset: u64,
    /// Length.
    pub length: u32,
}

/// Decodes a request header; a wrong magic closes the connection.
pub fn parse_request(b: [u8; REQUEST_LEN]) -> Result<Request, ProtoError> {
    let mut r = Reader::new(&b);
    let magic = r.u32().unwrap_or_default();
    if magic != REQUEST_MAGIC {
        return Err(ProtoError::BadMagic(magic.into()));
    }
    Ok(Request {
        flags: r.u16().unwrap_or_default(),
        kind: r.u16().unwrap_or_default(),
        handle: r.u64().unwrap_or_default(),
        offset: r.u64().unwrap_or_default(),
        length: r.u32().unwrap_or_default(),
    })
}

impl Request {
    /// How many payload bytes follow the header: a WRITE's length. `None` when the WRITE
    /// is too big to take in: the connection is closed rather than the data buffered.
    pub fn payload_len(&self) -> Option<usize> {
        match self.kind {
            cmd::WRITE if self.length > MAX_PAYLOAD => None,
            cmd::WRITE => Some(self.length as usize),
            _ => Some(0),
        }
    }
}

/// What the transmission phase allows, for [`validate`].
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Export size.
    pub size: u64,
    /// Writes refused.
    pub read_only: bool,
    /// Structured replies negotiated.
    pub structured: bool,
    /// `base:allocation` selected.
    pub allocation: bool,
}

/// A request the server will carry out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Read `len` at `off`; `df`: in one chunk.
    Read {
        /// Offset.
        off: u64,
        /// Length.
        len: u32,
        /// Do not fragment.
        df: bool,
    },
    /// Write the payload at `off`.
    Write {
        /// Offset.
        off: u64,
        /// FUA.
        fua: bool,
    },
    /// Disconnect after the requests in flight.
    Disconnect,
    /// Flush.
    Flush,
    /// Discard.
    Trim {
        /// Offset.
        off: u64,
        /// Length.
        len: u32,
        /// FUA.
        fua: bool,
    },
    /// Zero a range.
    WriteZeroes {
        /// Offset.
        off: u64,
        /// Length.
        len: u32,
        /// FUA.
        fua: bool,
        /// Write real zeros (no hole).
        no_hole: bool,
        /// Fail with ENOTSUP rather than be slow.
        fast: bool,
    },
    /// Allocation of a range.
    BlockStatus {
        /// Offset.
        off: u64,
        /// Length.
        len: u32,
        /// One extent only.
        req_one: bool,
    },
}

/// Checks a request against the export: the command, its flags, its range. `Err` is the
/// NBD error to reply with (nothing is done). Ranges past the end are EINVAL, or ENOSPC
/// for writes, as proto.md recommends; writes to a read-only export are EPERM.
pub fn validate(req: &Request, lim: &Limits) -> Result<Command, u32> {
    let allowed = match req.kind {
        cmd::READ => cflag::DF,
        cmd::WRITE => cflag::FUA,
        cmd::TRIM => cflag::FUA,
        cmd::WRITE_ZEROES => cflag::FUA | cflag::NO_HOLE | cflag::FAST_ZERO,
        cmd::BLOCK_STATUS => cflag::REQ_ONE,
        cmd::DISC | cmd::FLUSH => 0,
        _ => return Err(err::EINVAL),
    };
    if req.flags & !allowed != 0 || (req.flags & cflag::DF != 0 && !lim.structured) {
        return Err(err::EINVAL);
    }
    let fua = req.flags & cflag::FUA != 0;
    let (off, len) = (req.offset, req.length);
    let writes = matches!(req.kind, cmd::WRITE | cmd::TRIM | cmd::WRITE_ZEROES);
    if writes && lim.read_only {
        return Err(err::EPERM);
    }
    let in_range = off.checked_add(u64::from(len)).is_some_and(|end| end <= lim.size);
    match req.kind {
        cmd::DISC => return Ok(Command::Disconnect),
        cmd::FLUSH if off != 0 || len != 0 => return Err(err::EINVAL),
        cmd::FLUSH => return Ok(Command::Flush),
        _ => {}
    }
    if len == 0 {
        return Err(err::EINVAL);
    }
    if !in_range {
        return Err(if matches!(req.kind, cmd::WRITE | cmd::WRITE_ZEROES) { err::ENOSPC } else { err::EINVAL });
    }
    Ok(match req.kind {
        cmd::READ if len > MAX_PAYLOAD => return Err(err::EINVAL),
        cmd::READ => Command::Read { off, len, df: req.flags & cflag::DF != 0 },
        cmd::WRITE => Command::Write { off, fua },
        cmd::TRIM => Command::Trim { off, len, fua },
        cmd::WRITE_ZEROES => Command::WriteZeroes { off, len, fua, no_hole: req.flags & cflag::NO_HOLE != 0, fast: req.flags & cflag::FAST_ZERO != 0 },
        cmd::BLOCK_STATUS if !lim.allocation => return Err(err::EINVAL),
        _ => Command::BlockStatus { off, len, req_one: req.flags & cflag::REQ_ONE != 0 },
    })
}

/// A simple reply header (a successful simple READ appends its data).
pub fn simple_reply(handle: u64, error: u32) -> Vec<u8> {
    let mut b = Vec::with_capacity(16);
    b.extend_from_slice(&SIMPLE_REPLY_MAGIC.to_be_bytes());
    b.extend_from_slice(&error.to_be_bytes());
    b.extend_from_slice(&handle.to_be_bytes());
    b
}

/// Appends one structured reply chunk to `out`.
fn chunk(out: &mut Vec<u8>, handle: u64, flags: u16, kind: u16, payload: &[&[u8]]) {
    let len: usize = payload.iter().map(|p| p.len()).sum();
    out.extend_from_slice(&STRUCTURED_REPLY_MAGIC.to_be_bytes());
    out.extend_from_slice(&flags.to_be_bytes());
    out.extend_from_slice(&kind.to_be_bytes());
    out.extend_from_slice(&handle.to_be_bytes());
    out.extend_from_slice(&(len as u32).to_be_bytes());
    for p in payload {
        out.extend_from_slice(p);
    }
}

/// A structured NBD_REPLY_TYPE_NONE with DONE: success without data.
pub fn structured_done(handle: u64) -> Vec<u8> {
    let mut b = Vec::with_capacity(20);
    chunk(&mut b, handle, reply::FLAG_DONE, reply::NONE, &[]);
    b
}

/// A structured error (DONE) with a message for people (cut to fit its u16 length).
pub fn structured_error(handle: u64, error: u32, message: &str) -> Vec<u8> {
    let msg = &message.as_bytes()[..message.len().min(4096)];
    let mut b = Vec::with_capacity(26 + msg.len());
    chunk(&mut b, handle, reply::FLAG_DONE, reply::ERROR, &[&error.to_be_bytes(), &(msg.len() as u16).to_be_bytes(), msg]);
    b
}

/// Granularity at which a structured READ reply sends zeros as OFFSET_HOLE chunks.
pub const HOLE_GRANULARITY: usize = 4096;

/// A structured READ reply for `data` read at `off`: the non-zero runs (at
/// [`HOLE_GRANULARITY`]) as OFFSET_DATA chunks and the zero runs as OFFSET_HOLE chunks, in
/// order, the last one flagged DONE. With `df` (or when all is data) one OFFSET_DATA chunk.
pub fn read_reply(handle: u64, off: u64, data: &[u8], df: bool) -> Vec<u8> {
    let mut pieces: Vec<(u64, u64, bool)> = Vec::new(); // (offset in data, length, is data)
    if df {
        pieces.push((0, data.len() as u64, true));
    } else {
        let mut at = 0u64;
        for (o, n) in crate::extents::nonzero_runs(data, HOLE_GRANULARITY) {
            if o > at {
                pieces.push((at, o - at, false));
            }
            pieces.push((o, n, true));
            at = o + n;
        }
        if at < data.len() as u64 {
            pieces.push((at, data.len() as u64 - at, false));
        }
    }
    let data_bytes: u64 = pieces.iter().filter(|p| p.2).map(|p| p.1).sum();
    let mut b = Vec::with_capacity(data_bytes as usize + 32 * pieces.len());
    let last = pieces.len().saturating_sub(1);
    for (i, &(o, n, is_data)) in pieces.iter().enumerate() {
        let flags = if i == last { reply::FLAG_DONE } else { 0 };
        let at = (off + o).to_be_bytes();
        if is_data {
            chunk(&mut b, handle, flags, reply::OFFSET_DATA, &[&at, &data[o as usize..(o + n) as usize]]);
        } else {
            chunk(&mut b, handle, flags, reply::OFFSET_HOLE, &[&at, &(n as u32).to_be_bytes()]);
        }
    }
    b
}

/// A BLOCK_STATUS reply (DONE) for `base:allocation`: `(length, state)` descriptors.
pub fn block_status_reply(handle: u64, extents: &[(u32, u32)]) -> Vec<u8> {
    let mut payload = BASE_ALLOCATION_ID.to_be_bytes().to_vec();
    for (len, st) in extents {
        payload.extend_from_slice(&len.to_be_bytes());
        payload.extend_from_slice(&st.to_be_bytes());
    }
    let mut b = Vec::with_capacity(20 + payload.len());
    chunk(&mut b, handle, reply::FLAG_DONE, reply::BLOCK_STATUS, &[&payload]);
    b
}

/// The NBD error for a library errno: the protocol knows only a few, EIO stands for the rest.
pub fn nbd_error(errno: i32) -> u32 {
    match errno {
        libc::EPERM | libc::EROFS | libc::EACCES => err::EPERM,
        libc::ENOMEM => err::ENOMEM,
        libc::EINVAL => err::EINVAL,
        libc::ENOSPC | libc::EDQUOT => err::ENOSPC,
        libc::EOVERFLOW => err::EOVERFLOW,
        libc::EOPNOTSUPP => err::ENOTSUP,
        libc::ESHUTDOWN => err::ESHUTDOWN,
        _ => err::EIO,
    }
}

#[cfg(test)]
#[path = "proto_tests.rs"]
mod tests;
