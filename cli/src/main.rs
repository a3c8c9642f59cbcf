//! `rbd-ext`: the command line over the rbd-ext library (DESIGN.md §6).
//!
//! As ripgrep's `main`: `main` only turns the outcome of `try_main` into an exit status.
//! Errors are printed as one line, `rbd-ext: <what failed>: <errno text>`, exit status 1;
//! usage errors are clap's (exit status 2); a closed stdout (`rbd-ext export img - | head`)
//! is a clean stop, exit status 0.

#![forbid(unsafe_code)]

mod cli;
mod commands;

use std::io;
use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    match try_main() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if is_broken_pipe(&*e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rbd-ext: {}", with_advice(&*e));
            ExitCode::FAILURE
        }
    }
}

/// The error's text, plus the command-line advice for the library's [`rbd_ext::Hint`]: the
/// library names no flags, the CLI knows its own.
fn with_advice(e: &(dyn std::error::Error + 'static)) -> String {
    use rbd_ext::s3::{S3Error, S3ErrorKind};
    use rbd_ext::Hint;
    // (what failed, the ": <errno>" ending the library's errors print, hint)
    let (what, errno, hint) = if let Some(le) = e.downcast_ref::<rbd_ext::Error>() {
        (le.what().to_string(), format!(": {}", le.errno()), le.hint())
    } else if e.downcast_ref::<S3Error>().is_some_and(|se| se.kind() == S3ErrorKind::Tls) {
        (e.to_string(), String::new(), Some(Hint::TrustCa))
    } else {
        return e.to_string();
    };
    let advice = match hint {
        Some(Hint::Force) => ", or pass --force",
        Some(Hint::ReplaceSecret) => "; --replace-secret rotates it",
        Some(Hint::Size) => ": pass --size",
        Some(Hint::TrustCa) => " (rbd-ext: pass the PEM file with --ca-file FILE; s3 attach stores it with the settings)",
        Some(Hint::RemoteCredentials) => " (--remote-keyring PATH or --remote-key-ref config://KEY)",
        Some(Hint::StoreSecret) => " (or let `rbd-ext s3 attach ... --secret-key-file FILE` store it for you)",
        Some(Hint::Hydrate) => " (`rbd-ext hydrate IMAGE`)",
        _ => return e.to_string(),
    };
    format!("{what}{advice}{errno}")
}

fn try_main() -> commands::CmdResult {
    // Parse before starting anything: `--help` and usage errors exit from here.
    let cli = cli::Cli::parse();
    // librados completions wake the futures; the runtime's workers only poll them, and
    // several workers let reads of one request proceed while another is being copied.
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().thread_name("rbd-ext").build().map_err(|e| commands::io_err(e, "start the async runtime"))?;
    let result = runtime.block_on(commands::run(cli));
    // Images dropped inside the runtime close on blocking threads; a runtime that shuts down
    // discards those not yet started, so wait for them while it still runs.
    rbd_ext::wait_for_pending_closes();
    result
}

/// Whether the error (or one of its causes) is EPIPE: the reader went away.
fn is_broken_pipe(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if err.downcast_ref::<io::Error>().is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe) {
            return true;
        }
        cur = err.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn library_hints_become_cli_advice() {
        // The library's refusal names no flag; the CLI's line does, before the errno.
        let e = rbd_ext::s3::SecretRef::parse("an-inline-secret").unwrap_err();
        assert!(!e.to_string().contains("--"), "{e}");
        let line = with_advice(&e);
        assert!(line.contains("--secret-key-file FILE") && line.ends_with("(EINVAL)"), "{line}");
        // Errors without a hint print as they are.
        let plain = rbd_ext::header::features::parse("bogus").unwrap_err();
        assert_eq!(with_advice(&plain), plain.to_string());
    }
}
