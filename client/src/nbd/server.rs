//! The NBD server's I/O: accepting connections, the handshake, and the transmission
//! phase, where each connection reads requests in order, carries out up to
//! [`ServeOptions::max_in_flight`] of them at once over the shared [`Image`], and sends each
//! reply as soon as it is ready (out of order, as the protocol allows).
//!
//! A request is carried out only once it has been read whole (a WRITE's payload
//! included): a truncated or malformed frame closes the connection having written nothing.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader, BufWriter};
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::proto::{self, cmd, err, info, opt, rep, state, tflag, Command, Limits, Opt, Request};
use crate::allocation::Allocation;
use crate::error::{Error, Result};
use crate::Image;

/// Where log lines go (the CLI sends them to stderr).
pub type Logger = Arc<dyn Fn(&str) + Send + Sync>;

/// How to serve.
#[derive(Clone)]
#[non_exhaustive]
pub struct ServeOptions {
    /// The export's name (clients may also ask for the empty default name).
    pub export_name: String,
    /// Refuse writes.
    pub read_only: bool,
    /// Requests carried out at once per connection.
    pub max_in_flight: usize,
    /// Log sink.
    pub log: Logger,
}

impl ServeOptions {
    /// Serves export `export_name` read-write, 16 requests at once per connection, logging
    /// to `log`.
    pub fn new(export_name: impl Into<String>, log: Logger) -> Self {
        ServeOptions { export_name: export_name.into(), read_only: false, max_in_flight: 16, log }
    }

    /// Sets `export_name`: The export's name (clients may also ask for the empty default name).
    pub fn with_export_name(mut self, export_name: impl Into<String>) -> Self {
        self.export_name = export_name.into();
        self
    }

    /// Sets `read_only`: Refuse writes.
    pub fn with_read_only(mut self, read_only: bool) -> Self {
        self.read_only = read_only;
        self
    }

    /// Sets `max_in_flight`: Requests carried out at once per connection.
    pub fn with_max_in_flight(mut self, max_in_flight: usize) -> Self {
        self.max_in_flight = max_in_flight;
        self
    }

    /// Sets `log`: Log sink.
    pub fn with_log(mut self, log: Logger) -> Self {
        self.log = log;
        self
    }
}

/// A bound listener: a Unix socket or a TCP address.
pub enum Listener {
    /// A Unix domain socket.
    Unix(tokio::net::UnixListener),
    /// TCP.
    Tcp(tokio::net::TcpListener),
}

/// The most a BLOCK_STATUS reply describes (the client asks again for the rest).
const MAX_STATUS_SPAN: u64 = 1 << 30;
/// WRITE_ZEROES with NO_HOLE writes real zeros in pieces of this size.
const ZERO_CHUNK: u64 = 4 << 20;
/// Socket buffer of a connection, each way: a few dozen 4 KiB requests or replies.
const IO_BUFFER: usize = 256 << 10;

struct Shared {
    image: Arc<Image>,
    opts: ServeOptions,
    next_conn: AtomicU64,
}

impl Shared {
    fn flags(&self) -> u16 {
        let mut f = tflag::HAS_FLAGS | tflag::SEND_FLUSH | tflag::SEND_FUA | tflag::SEND_DF;
        // Every connection goes through the one Image, and a write is on the OSDs before
        // it is acknowledged: a flush on any connection covers them all.
        f |= tflag::CAN_MULTI_CONN;
        if self.opts.read_only {
            f |= tflag::READ_ONLY;
        } else {
            f |= tflag::SEND_TRIM | tflag::SEND_WRITE_ZEROES | tflag::SEND_FAST_ZERO;
        }
        f
    }

    fn name_ok(&self, name: &[u8]) -> bool {
        name.is_empty() || name == self.opts.export_name.as_bytes()
    }

    fn log(&self, line: &str) {
        (self.opts.log)(line)
    }
}

/// Serves `image` on `listener` until `shutdown` completes; then stops accepting, lets
/// every connection finish the requests it has read, and returns once all are closed.
pub async fn serve(image: Arc<Image>, listener: Listener, opts: ServeOptions, shutdown: impl Future<Output = ()>) -> Result<()> {
    let shared = Arc::new(Shared { image, opts, next_conn: AtomicU64::new(1) });
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut conns = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let accepted: std::io::Result<Box<dyn Stream>> = tokio::select! {
            _ = &mut shutdown => break,
            // Reap finished connections as we go.
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
            a = accept(&listener) => a,
        };
        match accepted {
            Ok(s) => {
                let n = shared.next_conn.fetch_add(1, Ordering::Relaxed);
                conns.spawn(connection(n, s, Arc::clone(&shared), stop_rx.clone()));
            }
            Err(e) => {
                shared.log(&format!("accept: {e}"));
                // Out of file descriptors and the like: do not spin.
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let open = conns.len();
    if open > 0 {
        shared.log(&format!("stopping: finishing the requests of {open} connection(s)"));
    }
    while conns.join_next().await.is_some() {}
    Ok(())
}

trait Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Stream for T {}

async fn accept(l: &Listener) -> std::io::Result<Box<dyn Stream>> {
    Ok(match l {
        Listener::Unix(u) => Box::new(u.accept().await?.0),
        Listener::Tcp(t) => {
            let (s, _) = t.accept().await?;
            // Replies are whole messages already: do not hold them back.
            let _ = s.set_nodelay(true);
            Box::new(s)
        }
    })
}

/// What ended a connection, for the log.
enum End {
    /// The client disconnected or aborted: nothing to say.
    Clean,
    /// The server is stopping.
    Shutdown,
    /// Why the connection was closed.
    Closed(String),
}

async fn connection(n: u64, stream: Box<dyn Stream>, shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let (rd, mut wr) = tokio::io::split(stream);
    // Buffered: a request header and its payload usually arrive together, and several
    // requests at once under load; one read syscall takes them all.
    let mut rd = BufReader::with_capacity(IO_BUFFER, rd);
    let hs = tokio::select! {
        r = handshake(&mut rd, &mut wr, &shared) => r,
        _ = stop.wait_for(|s| *s) => Ok(None),
    };
    let end = match hs {
        Ok(Some(neg)) => transmission(&mut rd, wr, &shared, neg, &mut stop).await,
        Ok(None) => End::Clean,
        Err(e) => End::Closed(e),
    };
    if let End::Closed(why) = end {
        shared.log(&format!("connection {n}: closed: {why}"));
    }
}

/// What the handshake settled.
#[derive(Clone, Copy)]
struct Negotiated {
    structured: bool,
    allocation: bool,
}

async fn read_exact<R: AsyncRead + Unpin, const N: usize>(rd: &mut R) -> std::io::Result<[u8; N]> {
    let mut b = [0u8; N];
    rd.read_exact(&mut b).await?;
    Ok(b)
}

/// The fixed newstyle handshake. `Ok(Some)` enters the transmission phase, `Ok(None)`
/// ends the connection quietly (ABORT, or EOF), `Err` closes it with a reason.
async fn handshake<R, W>(rd: &mut R, wr: &mut W, shared: &Shared) -> std::result::Result<Option<Negotiated>, String>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let io = |e: std::io::Error| e.to_string();
    wr.write_all(&proto::greeting()).await.map_err(io)?;
    let Ok(flags) = read_exact::<_, 4>(rd).await else {
        return Ok(None);
    };
    let no_zeroes = proto::parse_client_flags(flags).map_err(|e| e.to_string())?;
    let mut neg = Negotiated { structured: false, allocation: false };
    loop {
        let Ok(h) = read_exact::<_, 16>(rd).await else {
            return Ok(None);
        };
        let (option, len) = proto::parse_option_header(h).map_err(|e| e.to_string())?;
        if len > proto::MAX_OPTION_LEN {
            return Err(format!("option {option} of {len} bytes is too long"));
        }
        let mut data = vec![0u8; len as usize];
        rd.read_exact(&mut data).await.map_err(|e| format!("truncated option {option}: {e}"))?;
        let mut out = Vec::new();
        match proto::parse_option(option, &data) {
            Err(e) => out = proto::option_error(option, rep::ERR_INVALID, &e.to_string()),
            Ok(Opt::Abort) => {
                let _ = wr.write_all(&proto::option_reply(option, rep::ACK, &[])).await;
                return Ok(None);
            }
            Ok(Opt::ExportName(name)) => {
                if !shared.name_ok(&name) {
                    return Err(format!("unknown export {:?}", String::from_utf8_lossy(&name)));
                }
                let r = proto::export_name_reply(shared.image.size(), shared.flags(), no_zeroes);
                wr.write_all(&r).await.map_err(io)?;
                // No meta context can have been selected without GO; structured may be.
                return Ok(Some(Negotiated { allocation: false, ..neg }));
            }
            Ok(Opt::List) => {
                out.extend(proto::rep_server(&shared.opts.export_name));
                out.extend(proto::option_reply(option, rep::ACK, &[]));
            }
            Ok(Opt::StructuredReply) => {
                neg.structured = true;
                out = proto::option_reply(option, rep::ACK, &[]);
            }
            Ok(Opt::Info { go, name, requests }) => {
                if !shared.name_ok(&name) {
                    out = proto::option_error(option, rep::ERR_UNKNOWN, &format!("no export {:?}", String::from_utf8_lossy(&name)));
                } else {
                    out.extend(proto::info_export(option, shared.image.size(), shared.flags()));
                    // Always sent: a client that did not ask may ignore it.
                    out.extend(proto::info_block_size(option));
                    if requests.contains(&info::NAME) {
                        out.extend(proto::info_name(option, &shared.opts.export_name));
                    }
                    out.extend(proto::option_reply(option, rep::ACK, &[]));
                    if go {
                        wr.write_all(&out).await.map_err(io)?;
                        return Ok(Some(neg));
                    }
                }
            }
            Ok(Opt::MetaContext { set, export, queries }) => {
                if set && !neg.structured {
                    out = proto::option_error(option, rep::ERR_INVALID, "SET_META_CONTEXT needs structured replies first");
                } else if !shared.name_ok(&export) {
                    out = proto::option_error(option, rep::ERR_UNKNOWN, "no such export");
                } else {
                    // LIST with no query lists everything; SET with none selects nothing.
                    let hit = if queries.is_empty() { !set } else { queries.iter().any(|q| proto::query_matches(q, !set)) };
                    if set {
                        neg.allocation = hit;
                    }
                    if hit {
                        out.extend(proto::rep_meta_context(option));
                    }
                    out.extend(proto::option_reply(option, rep::ACK, &[]));
                }
            }
            Ok(Opt::Unknown(o)) => {
                let why = if o == opt::STARTTLS { "TLS is not offered" } else { "unknown option" };
                out = proto::option_error(option, rep::ERR_UNSUP, why);
            }
        }
        wr.write_all(&out).await.map_err(io)?;
    }
}

/// The transmission phase: read requests until DISC, EOF, an unrecoverable frame or the
/// server's stop; requests already read are finished and answered before the close.
///
/// One task per connection runs every request of the connection concurrently (up to
/// `max_in_flight`) and writes the replies itself, in completion order: a librados completion
/// wakes this one task, which answers at once, instead of hopping through a request task and a
/// writer task (each hop a thread wake-up, which on a small machine costs more than the I/O).
async fn transmission<R, W>(rd: &mut R, wr: W, shared: &Arc<Shared>, neg: Negotiated, stop: &mut watch::Receiver<bool>) -> End
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let lim = Limits { size: shared.image.size(), read_only: shared.opts.read_only, structured: neg.structured, allocation: neg.allocation };
    let max = shared.opts.max_in_flight.max(1);
    // Replies that are ready together leave in one write syscall (large reads bypass the
    // buffer); the socket is flushed whenever no further reply is waiting.
    let mut wr = BufWriter::with_capacity(IO_BUFFER, wr);
    // Owns the request being read across loop turns, so a completion that interrupts a
    // partly read request loses nothing (`next()` on it is cancel-safe).
    let requests = futures::stream::unfold(rd, |rd| async move { Some((read_request(rd).await, rd)) });
    futures::pin_mut!(requests);
    let mut running = FuturesUnordered::new();
    let end = loop {
        enum Event<Q, A> {
            Replied(A),
            Request(Q),
            Stop,
        }
        let event = tokio::select! {
            Some(reply) = running.next(), if !running.is_empty() => Event::Replied(reply),
            Some(r) = requests.next(), if running.len() < max => Event::Request(r),
            _ = stop.wait_for(|s| *s) => Event::Stop,
        };
        let read = match event {
            Event::Replied(reply) => {
                if let Err(e) = send_ready(&mut wr, reply, &mut running).await {
                    break End::Closed(format!("writing a reply: {e}"));
                }
                continue;
            }
            Event::Request(r) => r,
            Event::Stop => break End::Shutdown,
        };
        let (req, payload) = match read {
            Ok(Some(x)) => x,
            Ok(None) => break End::Clean,
            Err(why) => break End::Closed(why),
        };
        let command = match proto::validate(&req, &lim) {
            Ok(Command::Disconnect) => break End::Clean,
            Ok(c) => c,
            Err(e) => {
                let reply = error_reply(req.handle, req.kind, e, neg.structured, "invalid request");
                if let Err(e) = send_ready(&mut wr, reply, &mut running).await {
                    break End::Closed(format!("writing a reply: {e}"));
                }
                continue;
            }
        };
        let shared = Arc::clone(shared);
        running.push(async move {
            // A bug in one request must not take the connection's other requests with it.
            match AssertUnwindSafe(execute(&shared, &req, command, payload, neg)).catch_unwind().await {
                Ok(reply) => reply,
                Err(_) => {
                    shared.log(&format!("request {} at {}+{}: panicked", kind_name(req.kind), req.offset, req.length));
                    error_reply(req.handle, req.kind, err::EIO, neg.structured, "internal error")
                }
            }
        });
    };
    // Finish and answer what was read (the client may still be reading replies).
    while let Some(reply) = running.next().await {
        if wr.write_all(&reply).await.is_err() {
            break;
        }
    }
    let _ = wr.flush().await;
    let _ = wr.shutdown().await;
    end
}

/// Writes `reply` and every other reply already finished, then flushes.
async fn send_ready<W, F>(wr: &mut BufWriter<W>, reply: Vec<u8>, running: &mut FuturesUnordered<F>) -> std::io::Result<()>
where
    W: AsyncWrite + Unpin,
    F: Future<Output = Vec<u8>>,
{
    wr.write_all(&reply).await?;
    while let Some(Some(more)) = running.next().now_or_never() {
        wr.write_all(&more).await?;
    }
    wr.flush().await
}

/// Reads one request and its payload. `Ok(None)` on EOF between requests.
async fn read_request<R: AsyncRead + Unpin>(rd: &mut R) -> std::result::Result<Option<(Request, Vec<u8>)>, String> {
    let mut h = [0u8; proto::REQUEST_LEN];
    let mut got = 0;
    while got < h.len() {
        match rd.read(&mut h[got..]).await {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(format!("truncated request header ({got} of {} bytes)", h.len())),
            Ok(k) => got += k,
            Err(e) => return Err(e.to_string()),
        }
    }
    let req = proto::parse_request(h).map_err(|e| format!("request: {e}"))?;
    let n = req.payload_len().ok_or_else(|| format!("WRITE of {} bytes is larger than the {} advertised", req.length, proto::MAX_PAYLOAD))?;
    let mut payload = vec![0u8; n];
    rd.read_exact(&mut payload).await.map_err(|e| format!("truncated WRITE payload ({} bytes announced): {e}", req.length))?;
    Ok(Some((req, payload)))
}

fn error_reply(handle: u64, kind: u16, error: u32, structured: bool, message: &str) -> Vec<u8> {
    // With structured replies a READ must be answered with chunks; the rest may be simple.
    if structured && matches!(kind, cmd::READ | cmd::BLOCK_STATUS) {
        proto::structured_error(handle, error, message)
    } else {
        proto::simple_reply(handle, error)
    }
}

/// Carries out one valid request; returns its reply.
async fn execute(shared: &Shared, req: &Request, c: Command, payload: Vec<u8>, neg: Negotiated) -> Vec<u8> {
    let image = &shared.image;
    let result: Result<Vec<u8>> = async {
        match c {
            Command::Read { off, len, df } => {
                let data = image.read_at(off, u64::from(len)).await?;
                Ok(if neg.structured {
                    proto::read_reply(req.handle, off, &data, df)
                } else {
                    let mut b = proto::simple_reply(req.handle, 0);
                    b.extend_from_slice(&data);
                    b
                })
            }
            Command::Write { off, fua } => {
                image.write_at(off, &payload).await?;
                done(image, req, fua).await
            }
            Command::Flush => done(image, req, true).await,
            Command::Trim { off, len, fua } => {
                image.discard(off, u64::from(len)).await?;
                done(image, req, fua).await
            }
            Command::WriteZeroes { off, len, fua, no_hole, fast } => {
                if no_hole && fast {
                    // Real zeros cost as much as a write: the client asked to be told.
                    return Ok(error_reply(req.handle, req.kind, err::ENOTSUP, neg.structured, ""));
                }
                if no_hole {
                    let mut at = off;
                    let end = off + u64::from(len);
                    while at < end {
                        let n = (end - at).min(ZERO_CHUNK - at % ZERO_CHUNK);
                        image.write_at(at, &vec![0u8; n as usize]).await?;
                        at += n;
                    }
                } else {
                    image.write_zeroes(off, u64::from(len)).await?;
                }
                done(image, req, fua).await
            }
            Command::BlockStatus { off, len, req_one } => {
                let span = u64::from(len).min(MAX_STATUS_SPAN);
                let runs = image.allocation(off, span).await?;
                let take = if req_one { 1 } else { runs.len() };
                let descs: Vec<(u32, u32)> = runs
                    .into_iter()
                    .take(take)
                    .map(|(n, a)| {
                        let st = match a {
                            Allocation::Data => 0,
                            Allocation::Zero => state::ZERO,
                            Allocation::Hole => state::HOLE | state::ZERO,
                        };
                        (n as u32, st)
                    })
                    .collect();
                Ok(proto::block_status_reply(req.handle, &descs))
            }
            Command::Disconnect => Ok(Vec::new()),
        }
    }
    .await;
    match result {
        Ok(b) => b,
        Err(e) => {
            shared.log(&format!("request {} at {}+{}: {e}", kind_name(req.kind), req.offset, req.length));
            error_reply(req.handle, req.kind, proto::nbd_error(e.errno().0), neg.structured, &e.to_string())
        }
    }
}

/// A successful reply without data, after a flush when asked (FUA, FLUSH).
async fn done(image: &Image, req: &Request, flush: bool) -> std::result::Result<Vec<u8>, Error> {
    if flush {
        image.flush().await?;
    }
    Ok(proto::simple_reply(req.handle, 0))
}

fn kind_name(kind: u16) -> &'static str {
    match kind {
        cmd::READ => "READ",
        cmd::WRITE => "WRITE",
        cmd::FLUSH => "FLUSH",
        cmd::TRIM => "TRIM",
        cmd::WRITE_ZEROES => "WRITE_ZEROES",
        cmd::BLOCK_STATUS => "BLOCK_STATUS",
        _ => "?",
    }
}
