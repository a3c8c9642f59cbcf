//! Parents in another Ceph cluster (DESIGN.md §5): reading the remote cluster's conf and
//! keyring, keeping its key in the local mon config-key store (only a `config://` reference
//! goes into the child's header), and one shared, timed connection per remote cluster.

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

/// The `mon host` setting of a Ceph conf file, split into addresses.
pub fn conf_mon_hosts(conf: &str) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(conf).map_err(|e| Error::new(Errno(e.raw_os_error().unwrap_or(libc::EIO)), format!("read remote conf {conf}")))?;
    for line in text.lines() {
        let line = line.trim();
        let Some((k, v)) = line.split_once('=') else { continue };
        let k = k.trim().replace([' ', '-'], "_");
        if k == "mon_host" {
            let hosts = split_mon_hosts(v);
            if !hosts.is_empty() {
                return Ok(hosts);
            }
        }
    }
    Err(Error::new(Errno::EINVAL, format!("remote conf {conf} has no `mon host` setting")))
}

/// Splits a `mon host` value on commas and spaces outside `[...]` groups (a monitor with
/// several addresses is written `[v2:ip:3300,v1:ip:6789]`).
fn split_mon_hosts(v: &str) -> Vec<String> {
    let (mut out, mut cur, mut depth) = (Vec::new(), String::new(), 0u32);
    for ch in v.chars() {
        match ch {
            '[' => {
                depth += 1;
                cur.push(ch);
            }
            ']' => {
                depth = depth.saturating_sub(1);
                cur.push(ch);
            }
            ',' | ' ' | '\t' if depth == 0 => {
                if !cur.trim().is_empty() {
                    out.push(cur.trim().to_string());
                }
                cur.clear();
            }
            _ => cur.push(ch),
        }
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_string());
    }
    out
}

/// The base64 key of `client_name` in a keyring file.
pub fn keyring_key(keyring: &str, client_name: &str) -> Result<String> {
    let text = std::fs::read_to_string(keyring).map_err(|e| Error::new(Errno(e.raw_os_error().unwrap_or(libc::EIO)), format!("read remote keyring {keyring}")))?;
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
    let id = remote.client_name.strip_prefix("client.").unwrap_or(&remote.client_name);
    let secs = timeout.as_secs().max(1).to_string();
    let opts = ConnectOptions {
        // No conf file: everything the connection needs is set below, nothing is read from
        // the local cluster's conf or keyring.
        conf: Some("/dev/null".into()),
        keyring: None,
        id: Some(id.to_string()),
        cluster_name: None,
        settings: vec![
            ("mon_host".into(), remote.mon_hosts.join(",")),
            ("key".into(), key.trim().to_string()),
            ("keyring".into(), String::new()),
            ("client_mount_timeout".into(), secs.clone()),
            ("rados_mon_op_timeout".into(), secs.clone()),
            ("rados_osd_op_timeout".into(), (timeout.as_secs().max(1) * 3).to_string()),
        ],
    };
    let c = Cluster::connect(&opts).map_err(|e| {
        let errno = if e.errno() == Errno::EPERM { Errno::EACCES } else { e.errno() };
        Error::new(
            errno,
            format!(
                "connect to remote cluster '{}' (monitors {}) as {} (key {}): {}",
                remote.name,
                remote.mon_hosts.join(","),
                remote.client_name,
                if remote.secret_ref.is_empty() { "given" } else { &remote.secret_ref },
                e.errno().text()
            ),
        )
    })?;
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_conf_and_keyring() {
        let dir = std::env::temp_dir().join(format!("rbd-ext-remote-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let conf = dir.join("a.conf");
        std::fs::write(&conf, "[global]\nfsid = x\nmon host = [v2:127.0.0.1:3300,v1:127.0.0.1:6789], 127.0.0.2\n").unwrap();
        assert_eq!(conf_mon_hosts(conf.to_str().unwrap()).unwrap(), ["[v2:127.0.0.1:3300,v1:127.0.0.1:6789]", "127.0.0.2"]);
        let kr = dir.join("k");
        std::fs::write(&kr, "[client.other]\n\tkey = AAA\n[client.admin]\n\tkey = AQBsecret==\n\tcaps mon = \"allow *\"\n").unwrap();
        assert_eq!(keyring_key(kr.to_str().unwrap(), "client.admin").unwrap(), "AQBsecret==");
        assert_eq!(keyring_key(kr.to_str().unwrap(), "client.nobody").unwrap_err().errno(), Errno::EACCES);
        std::fs::remove_dir_all(&dir).ok();
    }
}
