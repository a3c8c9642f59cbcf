//! The options every Ceph tool reads first, from `CEPH_ARGS` and the command line (what
//! `ceph_argparse_early_args` takes in stock tools): who to connect as, which conf file,
//! which cluster. They must be known before librados' handle exists (the client name is
//! fixed at `rados_create2`); every other option in `CEPH_ARGS` is left to librados
//! (`rados_conf_parse_env`).

use crate::error::{Errno, Error, Result};

/// The early options found in one argument list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EarlyArgs {
    /// Client id without `client.` (`--id`, `-i`, `--user`, or `--name client.ID`, `-n`).
    pub id: Option<String>,
    /// `--conf`, `-c`.
    pub conf: Option<String>,
    /// `--cluster`.
    pub cluster: Option<String>,
}

/// `CEPH_ARGS` split on whitespace, as Ceph's `env_to_vec` does (no quoting).
pub fn env_args() -> Vec<String> {
    std::env::var("CEPH_ARGS").map(|s| s.split_whitespace().map(str::to_string).collect()).unwrap_or_default()
}

/// Finds the early options in `args`; a later occurrence wins, as in Ceph. Spellings as
/// Ceph's parser accepts them: `--opt VALUE`, `--opt=VALUE`, `-x VALUE`, and `_` for `-`
/// in long names.
pub fn early_args(args: &[String]) -> Result<EarlyArgs> {
    let mut out = EarlyArgs::default();
    let mut i = 0;
    while i < args.len() {
        let arg = args[i].as_str();
        if arg == "--" {
            break;
        }
        let (opt, inline) = match arg.split_once('=') {
            Some((o, v)) if o.starts_with("--") => (o.replace('_', "-"), Some(v.to_string())),
            _ if arg.starts_with("--") => (arg.replace('_', "-"), None),
            _ => (arg.to_string(), None),
        };
        let slot = match opt.as_str() {
            "--id" | "-i" | "--user" => Some(0),
            "--name" | "-n" => Some(1),
            "--conf" | "-c" => Some(2),
            "--cluster" => Some(3),
            _ => None,
        };
        let Some(slot) = slot else {
            i += 1;
            continue;
        };
        let value = match inline {
            Some(v) => v,
            None => {
                i += 1;
                args.get(i).cloned().ok_or_else(|| Error::new(Errno::EINVAL, format!("CEPH_ARGS: {arg} needs a value")))?
            }
        };
        match slot {
            0 => out.id = Some(value),
            1 => out.id = Some(client_id(&value)?.to_string()),
            2 => out.conf = Some(value),
            _ => out.cluster = Some(value),
        }
        i += 1;
    }
    Ok(out)
}

/// The id of a `client.ID` name; rbd-ext connects only as a client.
pub fn client_id(name: &str) -> Result<&str> {
    name.strip_prefix("client.").ok_or_else(|| Error::new(Errno::EINVAL, format!("name {name}: expected client.ID")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn finds_every_spelling() {
        let e = early_args(&v("--id cinder --keyring /k -m 1.2.3.4")).unwrap();
        assert_eq!(e, EarlyArgs { id: Some("cinder".into()), conf: None, cluster: None });
        assert_eq!(early_args(&v("-i a")).unwrap().id.as_deref(), Some("a"));
        assert_eq!(early_args(&v("--user=b")).unwrap().id.as_deref(), Some("b"));
        assert_eq!(early_args(&v("-n client.c")).unwrap().id.as_deref(), Some("c"));
        assert_eq!(early_args(&v("--name=client.d --id e")).unwrap().id.as_deref(), Some("e"), "the later one wins");
        let e = early_args(&v("-c /etc/ceph/x.conf --cluster=x")).unwrap();
        assert_eq!((e.conf.as_deref(), e.cluster.as_deref()), (Some("/etc/ceph/x.conf"), Some("x")));
        assert_eq!(early_args(&v("--debug_ms 1 -- --id f")).unwrap().id, None, "nothing after --");
    }

    #[test]
    fn rejects_what_ceph_would() {
        assert_eq!(early_args(&v("--id")).unwrap_err().errno(), Errno::EINVAL);
        assert_eq!(early_args(&v("--name osd.0")).unwrap_err().errno(), Errno::EINVAL);
    }
}
