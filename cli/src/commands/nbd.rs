//! `nbd serve IMAGE [--socket PATH | --bind ADDR:PORT] [--read-only] [--export-name NAME]`:
//! a foreground NBD server over the library's [`rbd_ext::nbd`] (systemd-friendly: logs to
//! stderr, the URI alone on stdout).

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use tokio::signal::unix::{signal, SignalKind};

use rbd_ext::nbd::{self, Listener, ServeOptions};
use rbd_ext::{Image, OpenOptions};
use rbd_ext_cls::types::ParentType;

use super::{io_err, msg, CmdResult, Ctx};
use crate::cli::{NbdCommand, NbdServeArgs};

/// NBD's registered port.
const DEFAULT_BIND: &str = "127.0.0.1:10809";

/// Runs the sub-verb.
pub async fn run(ctx: &Ctx, c: NbdCommand) -> CmdResult {
    match c {
        NbdCommand::Serve(a) => serve(ctx, a).await,
    }
}

fn log(line: &str) {
    eprintln!("rbd-ext nbd: {line}");
}

async fn serve(ctx: &Ctx, a: NbdServeArgs) -> CmdResult {
    let spec = ctx.spec(&a.image)?;
    // Signals first: a SIGTERM that arrives while the image opens must not kill us with
    // the lock held.
    let mut term = signal(SignalKind::terminate()).map_err(|e| io_err(e, "install the SIGTERM handler"))?;
    let mut int = signal(SignalKind::interrupt()).map_err(|e| io_err(e, "install the SIGINT handler"))?;
    let (cluster, s) = (ctx.cluster.clone(), spec.clone());
    let (_, header) = super::blocking(move || Ok(rbd_ext::header::locate(&cluster, &s)?)).await?;
    let s3_backed = header.parent.as_ref().is_some_and(|p| p.parent_type == ParentType::S3Source);
    let read_only = a.read_only || s3_backed;
    if s3_backed && !a.read_only {
        log(&format!("{spec} is an S3-backed parent, filled from S3 only: serving it read-only (write its clones)"));
    }
    let image = Arc::new(Image::open(&ctx.cluster, &spec, OpenOptions::default().with_write(!read_only)).await?);
    let name = a.export_name.clone().unwrap_or_else(|| spec.image.clone());
    let (listener, uri) = bind(&a, &name)?;
    if !read_only {
        let md = &image.location().md;
        let locker = format!("client.{}", md.instance_id());
        log(&format!("holding the writer lock of {spec} as {locker} (see: rbd-ext lock ls {spec})"));
    }
    log(&format!("serving {spec} ({} bytes{}) at {uri}", image.size(), if read_only { ", read-only" } else { "" }));
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{uri}").and_then(|_| out.flush()).map_err(|e| io_err(e, "write to stdout"))?;
    }
    let shutdown = async move {
        let which = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        log(&format!("{which}: no new connections; finishing the requests in flight"));
    };
    let opts = ServeOptions::new(name, Arc::new(log)).with_read_only(read_only).with_max_in_flight(a.max_in_flight);
    let served = nbd::serve(Arc::clone(&image), listener, opts, shutdown).await;
    if let Some(p) = &a.socket {
        let _ = std::fs::remove_file(p);
    }
    served?;
    image.flush().await?;
    let image = Arc::try_unwrap(image).map_err(|_| msg(format!("nbd serve {spec}: the image is still in use after the last connection closed")))?;
    image.close_async().await?;
    log(&format!("stopped; {spec} flushed{}", if read_only { "" } else { " and its lock released" }));
    Ok(())
}

/// Binds the socket or address; returns the listener and its NBD URI.
fn bind(a: &NbdServeArgs, name: &str) -> CmdResult<(Listener, String)> {
    if let Some(path) = &a.socket {
        remove_stale_socket(path)?;
        let l = tokio::net::UnixListener::bind(path).map_err(|e| io_err(e, format_args!("listen on {}", path.display())))?;
        return Ok((Listener::Unix(l), format!("nbd+unix:///{name}?socket={}", path.display())));
    }
    let addr: SocketAddr = match a.bind {
        Some(x) => x,
        None => DEFAULT_BIND.parse().map_err(|_| msg("bad default address"))?,
    };
    let std_l = std::net::TcpListener::bind(addr).map_err(|e| io_err(e, format_args!("listen on {addr}")))?;
    std_l.set_nonblocking(true).map_err(|e| io_err(e, format_args!("listen on {addr}")))?;
    let l = tokio::net::TcpListener::from_std(std_l).map_err(|e| io_err(e, format_args!("listen on {addr}")))?;
    // Port 0 picks a free port: print the real one.
    let local = l.local_addr().map_err(|e| io_err(e, format_args!("listen on {addr}")))?;
    let host = match local {
        SocketAddr::V6(v6) => format!("[{}]", v6.ip()),
        SocketAddr::V4(v4) => v4.ip().to_string(),
    };
    Ok((Listener::Tcp(l), format!("nbd://{host}:{}/{name}", local.port())))
}

/// A socket file left by a server that died (SIGKILL) is removed; one that a live server
/// answers on is not: that is an error.
fn remove_stale_socket(path: &Path) -> CmdResult {
    use std::os::unix::fs::FileTypeExt;
    let Ok(md) = std::fs::symlink_metadata(path) else {
        return Ok(());
    };
    if !md.file_type().is_socket() {
        return Err(msg(format!("listen on {}: the path exists and is not a socket: File exists (EEXIST)", path.display())));
    }
    if std::os::unix::net::UnixStream::connect(path).is_ok() {
        return Err(msg(format!("listen on {}: another server is listening there: Address in use (EADDRINUSE)", path.display())));
    }
    std::fs::remove_file(path).map_err(|e| io_err(e, format_args!("remove the stale socket {}", path.display())))
}
