//! Secret references: image metadata holds `config://<key>`, never the secret itself; the
//! secret lives in the monitors' config-key store (as upstream RBD migration does).
//!
//! Nothing here logs or formats a secret value, and a refused reference is never echoed
//! (it may be an inline secret pasted by mistake).

use std::fmt;
use std::str::FromStr;

use crate::error::{Errno, Error, Hint, Result};
use crate::rados::Cluster;

/// The only accepted scheme.
const SCHEME: &str = "config://";
/// Longest config-key name accepted.
const MAX_KEY_LEN: usize = 256;

/// How to store a secret; part of every refusal.
const HOW_TO_STORE: &str = "store it with `ceph config-key set <key> -i FILE` and pass `config://<key>`";

/// A reference to a secret in the mon config-key store: `config://<key>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SecretRef {
    key: String,
}

impl SecretRef {
    /// Parses `config://<key>`. Anything else (an inline secret in particular) is EINVAL,
    /// with a message that says how to store the secret and never repeats the input.
    pub fn parse(s: &str) -> Result<SecretRef> {
        let Some(key) = s.strip_prefix(SCHEME) else {
            let why = if s.contains("://") { "only config://<key> references are supported" } else { "inline secrets are refused" };
            return Err(Error::new(Errno::EINVAL, format!("secret: {why}; {HOW_TO_STORE}")).hinted(Hint::StoreSecret));
        };
        SecretRef::for_key(key)
    }

    /// The reference to config-key `key`: non-empty, at most 256 printable ASCII characters
    /// without spaces (EINVAL otherwise).
    pub fn for_key(key: &str) -> Result<SecretRef> {
        if key.is_empty() || key.len() > MAX_KEY_LEN || !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Error::new(
                Errno::EINVAL,
                format!("secret: bad config-key name (1 to {MAX_KEY_LEN} printable ASCII characters, no spaces); {HOW_TO_STORE}"),
            )
            .hinted(Hint::StoreSecret));
        }
        Ok(SecretRef { key: key.to_string() })
    }

    /// The config-key name.
    pub fn key(&self) -> &str {
        &self.key
    }
}

impl fmt::Display for SecretRef {
    /// `config://<key>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{SCHEME}{}", self.key)
    }
}

impl FromStr for SecretRef {
    type Err = Error;

    fn from_str(s: &str) -> Result<SecretRef> {
        SecretRef::parse(s)
    }
}

fn config_key_cmd(prefix: &str, key: &str) -> String {
    serde_json::json!({ "prefix": prefix, "key": key }).to_string()
}

/// Reads the secret `r` refers to (`config-key get`), without trailing whitespace (files
/// stored with `-i` usually end in a newline). ENOENT if the key is not set, EINVAL if it
/// is empty or not UTF-8. Blocking (a mon round trip).
pub fn resolve_secret(cluster: &Cluster, r: &SecretRef) -> Result<String> {
    let (out, _) = cluster.mon_command(&config_key_cmd("config-key get", &r.key), b"").map_err(|e| {
        let errno = e.errno();
        let hint = match errno {
            Errno::ENOENT => format!(": not set; {HOW_TO_STORE}"),
            Errno::EACCES | Errno::EPERM => format!(": refused by the monitors: this client needs the mon cap `{}` (README: Caps)", get_cap(&r.key)),
            _ => String::new(),
        };
        let e = Error::new(errno, format!("secret {r}: config-key get{hint}"));
        if errno == Errno::ENOENT {
            e.hinted(Hint::StoreSecret)
        } else {
            e
        }
    })?;
    let s = String::from_utf8(out).map_err(|_| Error::new(Errno::EINVAL, format!("secret {r}: not UTF-8")))?;
    let s = s.trim_end().to_string();
    if s.is_empty() {
        return Err(Error::new(Errno::EINVAL, format!("secret {r}: empty")));
    }
    Ok(s)
}

/// The mon cap that lets a client read config-key `key`: rbd-ext's own keys by their
/// prefix (`rbd-ext/`), any other by its name.
pub fn get_cap(key: &str) -> String {
    cap("config-key get", key)
}

/// The mon cap for `command` (`config-key get|set|rm`) on `key`.
fn cap(command: &str, key: &str) -> String {
    match key.strip_prefix(KEY_PREFIX) {
        Some(_) => format!("allow command \"{command}\" with key prefix {KEY_PREFIX}"),
        None => format!("allow command \"{command}\" with key {key}"),
    }
}

/// Where rbd-ext stores the secrets it is given (S3 keys, remote clusters' keys).
pub const KEY_PREFIX: &str = "rbd-ext/";

/// Stores `secret` under config-key `key` (`config-key set`, the value passed as the
/// command's input, never in the command text) and returns its reference.
pub fn store_secret(cluster: &Cluster, key: &str, secret: &[u8]) -> Result<SecretRef> {
    let r = SecretRef::for_key(key)?;
    if secret.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(Error::new(Errno::EINVAL, format!("secret {r}: refusing to store an empty secret")));
    }
    cluster.mon_command(&config_key_cmd("config-key set", key), secret).map_err(|e| {
        let hint = match e.errno() {
            Errno::EACCES | Errno::EPERM => format!(": refused by the monitors: this client needs the mon cap `{}` (README: Caps)", cap("config-key set", key)),
            _ => String::new(),
        };
        Error::new(e.errno(), format!("secret {r}: config-key set{hint}"))
    })?;
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_references() {
        let r = SecretRef::parse("config://rbd-ext/s3/prod-secret").unwrap();
        assert_eq!(r.key(), "rbd-ext/s3/prod-secret");
        assert_eq!(r.to_string(), "config://rbd-ext/s3/prod-secret");
        assert_eq!("config://k".parse::<SecretRef>().unwrap().key(), "k");
    }

    #[test]
    fn refuses_inline_secrets_without_echoing_them() {
        for s in ["wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "", "Config://k", "file:///etc/secret", "config:/k", " config://k"] {
            let e = SecretRef::parse(s).unwrap_err();
            assert_eq!(e.errno(), Errno::EINVAL, "{s}");
            let m = e.to_string();
            assert!(m.contains("ceph config-key set <key> -i FILE") && m.contains("config://<key>"), "{m}");
            assert!(s.len() < 12 || !m.contains(s), "{m}");
            // The library names no command-line flag: the CLI adds its own from the hint.
            assert!(!m.contains("--") && !m.contains("rbd-ext s3"), "{m}");
            assert_eq!(e.hint(), Some(Hint::StoreSecret), "{m}");
        }
        assert!(SecretRef::parse("hunter2hunter2").unwrap_err().to_string().contains("inline secrets are refused"));
        for s in ["config://", "config://a b", "config://a\nb", "config://\u{e9}"] {
            assert_eq!(SecretRef::parse(s).unwrap_err().errno(), Errno::EINVAL, "{s:?}");
        }
        assert!(SecretRef::parse(&format!("config://{}", "k".repeat(257))).is_err());
    }

    #[test]
    fn the_cap_to_read_a_key() {
        assert_eq!(get_cap("rbd-ext/s3/b-AK"), r#"allow command "config-key get" with key prefix rbd-ext/"#);
        assert_eq!(get_cap("mine/k"), r#"allow command "config-key get" with key mine/k"#);
        assert_eq!(cap("config-key set", "rbd-ext/remote/a/b"), r#"allow command "config-key set" with key prefix rbd-ext/"#);
    }

    #[test]
    fn commands_are_json() {
        let v: serde_json::Value = serde_json::from_str(&config_key_cmd("config-key get", "a\"b")).unwrap();
        assert_eq!(v, serde_json::json!({"prefix": "config-key get", "key": "a\"b"}));
    }
}
