//! Parents in another Ceph cluster (DESIGN.md §5): connecting through the remote cluster's
//! conf (read by librados) and keyring, keeping its key in the local mon config-key store
//! (only a `config://` reference goes into the child's header), and one shared, timed
//! connection per remote cluster.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use rbd_ext_cls::types::ParentRecord;

use crate::error::{Errno, Error, Result};
use crate::rados::{Cluster, ConnectOptions};
use crate::secret::{self, SecretRef};

/// How long connecting to a remote cluster may take before open fails.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where a remote parent lives, as recorded in the child.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RemoteCluster {
    /// A name for people (`ceph-a`).
    pub name: String,
    /// Monitor addresses.
    pub mon_hosts: Vec<String>,
    /// Client to connect as (`client.admin`).
    pub client_name: String,
    /// `config://<key>` in the local config-key store.
    pub secret_ref: String,
}

impl RemoteCluster {
    /// From a child's v4 parent record.
    pub fn from_record(p: &ParentRecord) -> RemoteCluster {
        RemoteCluster {
            name: p.remote_cluster_name.clone(),
            mon_hosts: p.remote_mon_hosts.clone(),
            client_name: p.remote_client_name.clone(),
            secret_ref: p.remote_secret_ref.clone(),
        }
    }
}

/// The monitors' addresses in a connected cluster's monmap, one entry per monitor as a
/// `mon host` value writes it (`[v2:ip:3300,v1:ip:6789]`).
pub fn monmap_addrs(c: &Cluster) -> Result<Vec<String>> {
    let (out, _) = c.mon_command(r#"{"prefix": "mon dump", "format": "json"}"#, &[])?;
    let bad = || Error::new(Errno::EBADMSG, "mon dump: unexpected reply".to_string());
    let v: serde_json::Value = serde_json::from_slice(&out).map_err(|_| bad())?;
    let mut hosts = Vec::new();
    for mon in v["mons"].as_array().ok_or_else(bad)? {
        let addrs: Vec<String> = mon["public_addrs"]["addrvec"]
            .as_array()
            .ok_or_else(bad)?
            .iter()
            .filter_map(|a| Some(format!("{}:{}", a["type"].as_str()?, a["addr"].as_str()?)))
            .collect();
        if !addrs.is_empty() {
            hosts.push(format!("[{}]", addrs.join(",")));
        }
    }
    if hosts.is_empty() {
        return Err(bad());
    }
    Ok(hosts)
}

/// The base64 key of `client_name` in a keyring file.
pub fn keyring_key(keyring: &str, client_name: &str) -> Result<String> {
    let text =
        std::fs::read_to_string(keyring).map_err(|e| Error::new(Errno(e.raw_os_error().unwrap_or(libc::EIO)), format!("read remote keyring {keyring}")))?;
    let mut in_section = false;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_section = line.trim_matches(['[', ']']) == client_name;
        } else if in_section {
            if let Some((k, v)) = line.split_once('=') {
                if k.trim() == "key" {
                    return Ok(v.trim().to_string());
                }
            }
        }
    }
    Err(Error::new(Errno::EACCES, format!("remote keyring {keyring} has no key for {client_name}")))
}

fn connections() -> &'static Mutex<HashMap<RemoteCluster, Weak<Cluster>>> {
    static CONNS: std::sync::OnceLock<Mutex<HashMap<RemoteCluster, Weak<Cluster>>>> = std::sync::OnceLock::new();
    CONNS.get_or_init(Default::default)
}

/// Connects to a remote cluster (or reuses this process's live connection to it), with the
/// key resolved from the local config-key store. Fails within `timeout` if its monitors do
/// not answer, naming the cluster and monitors.
pub fn connect(local: &Cluster, remote: &RemoteCluster, timeout: Duration) -> Result<Arc<Cluster>> {
    if let Some(c) = connections().lock().unwrap_or_else(|e| e.into_inner()).get(remote).and_then(Weak::upgrade) {
        return Ok(c);
    }
    let key = secret::resolve_secret(local, &SecretRef::parse(&remote.secret_ref)?)?;
    let c = connect_with_key(remote, &key, timeout)?;
    connections().lock().unwrap_or_else(|e| e.into_inner()).insert(remote.clone(), Arc::downgrade(&c));
    Ok(c)
}

/// Connects to a remote cluster with `key` itself (before it is stored anywhere, to check
/// it). Error messages name the cluster, monitors and client, never the key.
pub fn connect_with_key(remote: &RemoteCluster, key: &str, timeout: Duration) -> Result<Arc<Cluster>> {
    // No conf file: everything the connection needs is set here, nothing is read from the
    // local cluster's conf or keyring.
    let mut opts = options(&remote.client_name, key, timeout);
    opts.conf = Some("/dev/null".into());
    opts.settings.push(("mon_host".into(), remote.mon_hosts.join(",")));
    Cluster::connect(&opts).map_err(|e| {
        let key_src = if remote.secret_ref.is_empty() { "given" } else { &remote.secret_ref };
        connect_error(e, format_args!("'{}' (monitors {}) as {} (key {key_src})", remote.name, remote.mon_hosts.join(","), remote.client_name))
    })
}

/// Connects to a remote cluster through its own conf file, which librados reads as stock
/// tools do (`[global]`, `[client]`, `[client.ID]` sections, `mon host`, DNS SRV records),
/// as `client_name` with `key`. Returns the connection and its monitors' addresses from the
/// monmap: what a child records, so that opening it later needs no conf file.
pub fn connect_with_conf(name: &str, conf: &str, client_name: &str, key: &str, timeout: Duration) -> Result<(Arc<Cluster>, Vec<String>)> {
    let mut opts = options(client_name, key, timeout);
    opts.conf = Some(conf.to_string());
    let c = Cluster::connect(&opts).map_err(|e| connect_error(e, format_args!("'{name}' (conf {conf}) as {client_name}")))?;
    let hosts = monmap_addrs(&c).map_err(|e| e.context(format_args!("remote cluster '{name}' (conf {conf})")))?;
    Ok((c, hosts))
}

/// Makes `c` the shared connection to `remote` (one just opened to check the key).
pub fn remember(remote: &RemoteCluster, c: &Arc<Cluster>) {
    connections().lock().unwrap_or_else(|e| e.into_inner()).insert(remote.clone(), Arc::downgrade(c));
}

/// A connection to another cluster as `client_name` with `key`: no local keyring, no
/// `CEPH_ARGS` (both describe the local cluster), bounded waits.
fn options(client_name: &str, key: &str, timeout: Duration) -> ConnectOptions {
    let id = client_name.strip_prefix("client.").unwrap_or(client_name);
    let secs = timeout.as_secs().max(1).to_string();
    ConnectOptions {
        conf: None,
        keyring: None,
        id: Some(id.to_string()),
        cluster_name: None,
        settings: vec![
            ("key".into(), key.trim().to_string()),
            ("keyring".into(), String::new()),
            ("client_mount_timeout".into(), secs.clone()),
            ("rados_mon_op_timeout".into(), secs),
            ("rados_osd_op_timeout".into(), (timeout.as_secs().max(1) * 3).to_string()),
        ],
        args: Vec::new(),
        ignore_env: true,
    }
}

fn connect_error(e: Error, what: impl std::fmt::Display) -> Error {
    let errno = if e.errno() == Errno::EPERM { Errno::EACCES } else { e.errno() };
    Error::new(errno, format!("connect to remote cluster {what}: {}", e.errno().text()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_keyring() {
        let dir = std::env::temp_dir().join(format!("rbd-ext-remote-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let kr = dir.join("k");
        std::fs::write(&kr, "[client.other]\n\tkey = AAA\n[client.admin]\n\tkey = AQBsecret==\n\tcaps mon = \"allow *\"\n").unwrap();
        assert_eq!(keyring_key(kr.to_str().unwrap(), "client.admin").unwrap(), "AQBsecret==");
        assert_eq!(keyring_key(kr.to_str().unwrap(), "client.nobody").unwrap_err().errno(), Errno::EACCES);
        std::fs::remove_dir_all(&dir).ok();
    }
}
