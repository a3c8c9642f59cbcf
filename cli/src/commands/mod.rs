//! One module per verb; each `run` resolves its arguments and calls the library.
//!
//! Shared here: the connection and defaults every verb needs ([`Ctx`]), image spec parsing
//! with the `-p` default pool, the error folding (`CmdError`), output helpers.

use std::fmt;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::Arc;

use rbd_ext::rados::{Cluster, ConnectOptions};
use rbd_ext::{Errno, ImageSpec};

use crate::cli::{Cli, Command, Format, GlobalArgs};

pub mod bench;
pub mod children;
pub mod clone_map;
pub mod clone_standalone;
pub mod doctor;
pub mod export;
pub mod flatten;
pub mod hydrate;
pub mod import;
pub mod info;
pub mod lock;
pub mod nbd;
pub mod output;
pub mod protection;
pub mod read;
pub mod resize;
pub mod rm;
pub mod s3;
pub mod s3_finalize;
pub mod snap;
pub mod stats;
pub mod write;

/// What a verb returns: the library's typed errors folded into one catch-all (STYLE.md CLI).
pub type CmdResult<T = ()> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// What every verb gets: the connected cluster and the global options.
pub struct Ctx {
    /// The cluster named by --conf / --cluster / $CEPH_CONF.
    pub cluster: Arc<Cluster>,
    /// `-p`: the pool of specs that name none.
    pub pool: String,
    /// `--format`.
    pub format: Format,
    /// `--pretty-format`.
    pub pretty: bool,
}

impl Ctx {
    /// Connects as stock `rbd` would: the early options (who, which conf, which cluster)
    /// from the command line, else from `CEPH_ARGS`, else the defaults (`client.admin`,
    /// `$CEPH_CONF` and the standard search path); every other `CEPH_ARGS` option is applied
    /// by librados, then the command line's `--keyring` and `-m` (which win).
    fn connect(g: &GlobalArgs) -> CmdResult<Ctx> {
        let env = rbd_ext::ceph_args::early_args(&rbd_ext::ceph_args::env_args())?;
        let id = match (&g.name, &g.id) {
            (Some(n), _) => rbd_ext::ceph_args::client_id(n).map_err(|_| msg(format!("--name {n}: expected client.ID")))?.to_string(),
            (None, Some(id)) => id.clone(),
            (None, None) => env.id.unwrap_or_else(|| "admin".into()),
        };
        let mut args = Vec::new();
        if let Some(k) = &g.keyring {
            args.extend(["--keyring".to_string(), k.clone()]);
        }
        if let Some(m) = &g.mon_host {
            args.extend(["--mon-host".to_string(), m.clone()]);
        }
        let mut opts = ConnectOptions::default().with_id(id).with_args(args);
        (opts.conf, opts.cluster_name) = (g.conf.clone().or(env.conf), g.cluster.clone().or(env.cluster));
        let cluster = Cluster::connect(&opts)?;
        Ok(Ctx { cluster, pool: g.pool.clone(), format: g.format, pretty: g.pretty_format })
    }

    /// Parses `[pool/[namespace/]]image[@snap]`; a spec without a pool takes `-p`'s.
    pub fn spec(&self, s: &str) -> CmdResult<ImageSpec> {
        let mut spec: ImageSpec = s.parse()?;
        if !s.split('@').next().unwrap_or("").contains('/') {
            spec.pool = self.pool.clone();
        }
        Ok(spec)
    }

    /// Whether `--format json` was given.
    pub fn json(&self) -> bool {
        self.format == Format::Json
    }

    /// Prints a JSON document on stdout (one line, or indented with --pretty-format).
    pub fn print_json(&self, v: &serde_json::Value) -> CmdResult {
        let s = if self.pretty { serde_json::to_string_pretty(v)? } else { serde_json::to_string(v)? };
        let mut out = io::stdout().lock();
        writeln!(out, "{s}").map_err(|e| io_err(e, "write to stdout"))?;
        out.flush().map_err(|e| io_err(e, "write to stdout"))
    }
}

/// Connects and runs the verb.
pub async fn run(cli: Cli) -> CmdResult {
    let Cli { global, command } = cli;
    let ctx = blocking(move || Ctx::connect(&global)).await?;
    match command {
        Command::CloneStandalone(a) => clone_standalone::run(&ctx, a).await,
        Command::Info(a) => info::run(&ctx, a).await,
        Command::Children(a) => children::run(&ctx, a).await,
        Command::Protection(a) => protection::run(&ctx, a).await,
        Command::Read(a) => read::run(&ctx, a).await,
        Command::Write(a) => write::run(&ctx, a).await,
        Command::Export(a) => export::run(&ctx, a).await,
        Command::Import(a) => import::run(&ctx, a).await,
        Command::Flatten(a) => flatten::run(&ctx, a).await,
        Command::Rm(a) => rm::run(&ctx, a).await,
        Command::Resize(a) => resize::run(&ctx, a).await,
        Command::Snap(c) => snap::run(&ctx, c).await,
        Command::CloneMap(c) => clone_map::run(&ctx, c).await,
        Command::Lock(c) => lock::run(&ctx, c).await,
        Command::Bench(a) => bench::run(&ctx, a).await,
        Command::S3(c) => s3::run(&ctx, c).await,
        Command::Hydrate(a) => hydrate::run(&ctx, a).await,
        Command::Stats(a) => stats::run(&ctx, a).await,
        Command::Nbd(c) => nbd::run(&ctx, c).await,
        Command::Doctor(a) => doctor::run(&ctx, a).await,
    }
}

/// Runs library calls that have no async form (a connection, a pool scan, a few omap
/// reads) on the runtime's blocking pool, so that no verb blocks an async worker.
pub async fn blocking<T: Send + 'static>(f: impl FnOnce() -> CmdResult<T> + Send + 'static) -> CmdResult<T> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => Err(msg(format!("a blocking task was cancelled: {e}"))),
    }
}

/// A failure the CLI itself detects, worded completely by its creator.
#[derive(Debug)]
pub struct Message(pub String);

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Message {}

/// Boxes a [`Message`].
pub fn msg(s: impl Into<String>) -> Box<dyn std::error::Error + Send + Sync> {
    Box::new(Message(s.into()))
}

/// A local I/O failure (file, stdin, stdout) with what was being done, printed like the
/// library's errors: "<what>: <strerror> (ENAME)". The `io::Error` stays the source, so
/// `main` can recognise a broken pipe.
#[derive(Debug)]
pub struct IoFailure {
    what: String,
    err: io::Error,
}

impl fmt::Display for IoFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The library's errno table names the errnos RADOS returns; a local one it does
        // not know (EPIPE, ENOSPC...) keeps the OS wording.
        match self.err.raw_os_error().map(Errno) {
            Some(errno) if errno.name().is_some() => write!(f, "{}: {errno}", self.what),
            _ => write!(f, "{}: {}", self.what, self.err),
        }
    }
}

impl std::error::Error for IoFailure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.err)
    }
}

/// Wraps an `io::Error` with what was being done.
pub fn io_err(err: io::Error, what: impl fmt::Display) -> Box<dyn std::error::Error + Send + Sync> {
    Box::new(IoFailure { what: what.to_string(), err })
}

/// Whether a path argument means stdin/stdout.
pub fn is_dash(p: &Path) -> bool {
    p.as_os_str() == "-"
}

/// Opens FILE or `-` (stdin) for reading; also returns the file's size when it is a regular
/// file (a pipe or terminal has none).
pub fn open_input(p: &Path) -> CmdResult<(Box<dyn Read + Send>, Option<u64>)> {
    if is_dash(p) {
        return Ok((Box::new(io::stdin()), None));
    }
    let f = File::open(p).map_err(|e| io_err(e, format_args!("open {}", p.display())))?;
    let md = f.metadata().map_err(|e| io_err(e, format_args!("stat {}", p.display())))?;
    let size = md.is_file().then_some(md.len());
    Ok((Box::new(f), size))
}

/// A progress bar on stderr when it is a terminal, as `rbd` shows "Image flatten: 42%
/// complete..."; hidden (draws nothing) in pipes and logs, so scripts see clean output.
pub fn progress(label: &str, total: u64) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if !io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::with_draw_target(Some(total), indicatif::ProgressDrawTarget::stderr());
    let style = indicatif::ProgressStyle::with_template(&format!("{label}: {{percent:>3}}% complete... [{{bar:30}}] {{eta}}"))
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
    bar.set_style(style);
    bar
}

/// Ends a bar from [`progress`] as `rbd` does: "<label>: 100% complete...done.".
pub fn progress_done(bar: &indicatif::ProgressBar, label: &str) {
    if !bar.is_hidden() {
        bar.finish_and_clear();
        eprintln!("{label}: 100% complete...done.");
    }
}

/// Prints a note on stderr (reconciled entries and the like): never mixed with stdout.
pub fn note(text: &str) {
    eprintln!("rbd-ext: note: {text}");
}

/// Feature names for display, in bit order; unknown bits as hex.
pub fn feature_names(bits: u64) -> Vec<String> {
    rbd_ext::header::features::names(bits)
}

/// Sizes as `rbd info` prints them: "12 MiB", "4 KiB", "1.5 GiB", "100 B".
pub fn human_size(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut unit = 0;
    let mut v = n as f64;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    let num = format!("{v:.3}");
    format!("{} {}", num.trim_end_matches('0').trim_end_matches('.'), UNITS[unit])
}

/// Combines `--image-feature` values; `None` when none were given.
pub fn feature_bits(list: &[u64]) -> CmdResult<Option<u64>> {
    if list.is_empty() {
        return Ok(None);
    }
    let bits = list.iter().fold(0, |a, b| a | b);
    rbd_ext::header::features::check(bits).map_err(|e| msg(format!("--image-feature: {}", e.what())))?;
    Ok(Some(bits))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_print_like_rbd() {
        assert_eq!(human_size(12 << 20), "12 MiB");
        assert_eq!(human_size(100), "100 B");
        assert_eq!(human_size(3 << 29), "1.5 GiB");
        assert_eq!(human_size(0), "0 B");
    }

    #[test]
    fn features_print_by_name() {
        assert_eq!(feature_names(1 | 4 | 8), ["layering", "exclusive-lock", "object-map"]);
        assert_eq!(feature_names(1 << 20), ["unknown(0x100000)"]);
        assert!(feature_bits(&[8]).is_err());
        assert_eq!(feature_bits(&[]).unwrap(), None);
        assert_eq!(feature_bits(&[1, 4, 8]).unwrap(), Some(13));
    }

    #[test]
    fn io_failures_print_errno_and_keep_the_source() {
        let e = io_err(io::Error::from_raw_os_error(libc::EPIPE), "write to stdout");
        assert_eq!(e.to_string(), "write to stdout: Broken pipe (EPIPE)");
        // An errno the table does not name keeps the OS wording.
        let e2 = io_err(io::Error::from_raw_os_error(libc::ENOSPC), "write to f");
        assert_eq!(e2.to_string(), "write to f: No space left on device (os error 28)");
        let src = std::error::Error::source(&*e).unwrap().downcast_ref::<io::Error>().unwrap();
        assert_eq!(src.kind(), io::ErrorKind::BrokenPipe);
        let e = io_err(io::Error::from_raw_os_error(libc::ENOENT), "open f");
        assert_eq!(e.to_string(), "open f: No such file or directory (ENOENT)");
    }
}
