//! The standard AWS configuration sources, read as the aws CLI and rclone read them, for the
//! commands that talk to S3 directly (`s3 publish`): `AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_ENDPOINT_URL[_S3]`, `AWS_REGION` /
//! `AWS_DEFAULT_REGION`, `AWS_CA_BUNDLE`, `AWS_PROFILE`, and the shared files
//! `~/.aws/credentials` and `~/.aws/config` (`AWS_SHARED_CREDENTIALS_FILE`,
//! `AWS_CONFIG_FILE`).
//!
//! Precedence, as botocore's: an explicit profile reads only that profile's credentials;
//! otherwise the environment's key pair, then the `AWS_PROFILE` (or `default`) profile.
//! Nothing here logs or formats a secret.

use std::collections::HashMap;
use std::path::PathBuf;

use super::client::Credentials;
use crate::error::{Errno, Error, Result};

/// A snapshot of the environment and the home directory.
#[derive(Debug, Clone, Default)]
pub struct AwsEnv {
    vars: HashMap<String, String>,
    home: Option<PathBuf>,
}

impl AwsEnv {
    /// This process's environment (`AWS_*` and `HOME`).
    pub fn from_process() -> AwsEnv {
        let vars: HashMap<String, String> = std::env::vars().filter(|(k, _)| k.starts_with("AWS_")).collect();
        AwsEnv { vars, home: std::env::var_os("HOME").map(PathBuf::from) }
    }

    /// An environment made of `vars` (for tests).
    pub fn with_vars(vars: &[(&str, &str)], home: Option<PathBuf>) -> AwsEnv {
        AwsEnv { vars: vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(), home }
    }

    /// A variable, when set and not empty.
    fn var(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str).filter(|v| !v.is_empty())
    }

    /// The profile in effect: `explicit`, else `AWS_PROFILE`, else `default`.
    fn profile<'a>(&'a self, explicit: Option<&'a str>) -> &'a str {
        explicit.or_else(|| self.var("AWS_PROFILE")).unwrap_or("default")
    }

    fn file(&self, var: &str, default: &str) -> Option<PathBuf> {
        self.var(var).map(PathBuf::from).or_else(|| self.home.as_ref().map(|h| h.join(".aws").join(default)))
    }

    /// The `[section]` of an INI file, if the file and the section exist.
    fn section(&self, var: &str, default: &str, section: &str) -> Option<HashMap<String, String>> {
        let text = std::fs::read_to_string(self.file(var, default)?).ok()?;
        ini_section(&text, section)
    }

    /// A profile's settings in `~/.aws/config` (`[default]`, `[profile NAME]`).
    fn config(&self, profile: &str) -> Option<HashMap<String, String>> {
        let section = if profile == "default" { "default".to_string() } else { format!("profile {profile}") };
        self.section("AWS_CONFIG_FILE", "config", &section)
    }

    /// The credentials: of `profile` when given (from the shared credentials file), else
    /// of the environment, else of the `AWS_PROFILE` / `default` profile. `Ok(None)` when
    /// no source has any; EINVAL for a half-set source (an id without its secret).
    pub fn credentials(&self, profile: Option<&str>) -> Result<Option<Credentials>> {
        if profile.is_none() {
            match (self.var("AWS_ACCESS_KEY_ID"), self.var("AWS_SECRET_ACCESS_KEY")) {
                (Some(id), Some(secret)) => {
                    return Ok(Some(Credentials { session_token: self.var("AWS_SESSION_TOKEN").map(str::to_string), ..Credentials::new(id, secret) }))
                }
                (None, None) => {}
                _ => return Err(Error::new(Errno::EINVAL, "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY: set both or neither")),
            }
        }
        let name = self.profile(profile);
        let path = self.file("AWS_SHARED_CREDENTIALS_FILE", "credentials");
        let Some(s) = self.section("AWS_SHARED_CREDENTIALS_FILE", "credentials", name) else {
            if profile.is_some() {
                let where_ = path.map(|p| p.display().to_string()).unwrap_or_else(|| "~/.aws/credentials".into());
                return Err(Error::new(Errno::ENOENT, format!("AWS profile {name}: no [{name}] section in {where_}")));
            }
            return Ok(None);
        };
        match (s.get("aws_access_key_id"), s.get("aws_secret_access_key")) {
            (Some(id), Some(secret)) => {
                Ok(Some(Credentials { session_token: s.get("aws_session_token").cloned(), ..Credentials::new(id.clone(), secret.clone()) }))
            }
            _ => Err(Error::new(Errno::EINVAL, format!("AWS profile {name}: needs aws_access_key_id and aws_secret_access_key"))),
        }
    }

    /// The endpoint: `AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL`, or the profile's
    /// `endpoint_url` in `~/.aws/config`.
    pub fn endpoint(&self, profile: Option<&str>) -> Option<String> {
        self.var("AWS_ENDPOINT_URL_S3")
            .or_else(|| self.var("AWS_ENDPOINT_URL"))
            .map(str::to_string)
            .or_else(|| self.config(self.profile(profile))?.get("endpoint_url").cloned())
    }

    /// The region: `AWS_REGION`, `AWS_DEFAULT_REGION`, or the profile's `region`.
    pub fn region(&self, profile: Option<&str>) -> Option<String> {
        self.var("AWS_REGION")
            .or_else(|| self.var("AWS_DEFAULT_REGION"))
            .map(str::to_string)
            .or_else(|| self.config(self.profile(profile))?.get("region").cloned())
    }

    /// The CA bundle: `AWS_CA_BUNDLE`, or the profile's `ca_bundle`.
    pub fn ca_bundle(&self, profile: Option<&str>) -> Option<String> {
        self.ca_bundle_origin(profile).map(|(path, _)| path)
    }

    /// The CA bundle and where it was found, for messages: (`path`, `AWS_CA_BUNDLE=path`
    /// or `ca_bundle=path of [profile NAME] in ~/.aws/config`).
    pub fn ca_bundle_origin(&self, profile: Option<&str>) -> Option<(String, String)> {
        if let Some(v) = self.var("AWS_CA_BUNDLE") {
            return Some((v.to_string(), format!("AWS_CA_BUNDLE={v}")));
        }
        let name = self.profile(profile);
        let path = self.config(name)?.get("ca_bundle").cloned()?;
        let section = if name == "default" { "[default]".to_string() } else { format!("[profile {name}]") };
        let file = self.file("AWS_CONFIG_FILE", "config").map(|p| p.display().to_string()).unwrap_or_else(|| "~/.aws/config".into());
        let origin = format!("ca_bundle={path} of {section} in {file}");
        Some((path, origin))
    }
}

/// The `key = value` pairs of `[section]` in an INI text (`#` and `;` comments; keys
/// lower-cased; later sections of the same name are ignored).
fn ini_section(text: &str, section: &str) -> Option<HashMap<String, String>> {
    let mut found: Option<HashMap<String, String>> = None;
    let mut inside = false;
    for line in text.lines() {
        let l = line.trim();
        if l.is_empty() || l.starts_with('#') || l.starts_with(';') {
            continue;
        }
        if let Some(name) = l.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            if found.is_some() && inside {
                break;
            }
            inside = name.trim() == section;
            if inside {
                found = Some(HashMap::new());
            }
            continue;
        }
        if let (true, Some((k, v))) = (inside, l.split_once('=')) {
            found.as_mut()?.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_credentials_and_token() {
        let env = AwsEnv::with_vars(&[("AWS_ACCESS_KEY_ID", "AKID"), ("AWS_SECRET_ACCESS_KEY", "sk"), ("AWS_SESSION_TOKEN", "tok")], None);
        let c = env.credentials(None).unwrap().unwrap();
        assert_eq!((c.access_key.as_str(), c.secret_key.as_str(), c.session_token.as_deref()), ("AKID", "sk", Some("tok")));
        let half = AwsEnv::with_vars(&[("AWS_ACCESS_KEY_ID", "AKID")], None);
        assert_eq!(half.credentials(None).unwrap_err().errno(), Errno::EINVAL);
        assert!(AwsEnv::with_vars(&[], None).credentials(None).unwrap().is_none());
    }

    #[test]
    fn shared_files_and_precedence() {
        let dir = std::env::temp_dir().join(format!("rbd-ext-aws-{}", std::process::id()));
        std::fs::create_dir_all(dir.join(".aws")).unwrap();
        std::fs::write(
            dir.join(".aws/credentials"),
            "[default]\naws_access_key_id = DEF\naws_secret_access_key = defsk\n\n# c\n[ceph]\naws_access_key_id=CEPH\naws_secret_access_key=cephsk\naws_session_token = t\n",
        )
        .unwrap();
        std::fs::write(dir.join(".aws/config"), "[default]\nregion = eu-1\n[profile ceph]\nregion = zg\nendpoint_url = http://127.0.0.1:7480\n").unwrap();
        let env = AwsEnv::with_vars(&[("AWS_ACCESS_KEY_ID", "ENV"), ("AWS_SECRET_ACCESS_KEY", "envsk")], Some(dir.clone()));
        // The environment beats the default profile; an explicit profile beats the environment.
        assert_eq!(env.credentials(None).unwrap().unwrap().access_key, "ENV");
        let c = env.credentials(Some("ceph")).unwrap().unwrap();
        assert_eq!((c.access_key.as_str(), c.session_token.as_deref()), ("CEPH", Some("t")));
        assert_eq!(env.credentials(Some("nope")).unwrap_err().errno(), Errno::ENOENT);
        let files_only = AwsEnv::with_vars(&[], Some(dir.clone()));
        assert_eq!(files_only.credentials(None).unwrap().unwrap().access_key, "DEF");
        assert_eq!(files_only.region(None).as_deref(), Some("eu-1"));
        assert_eq!(files_only.region(Some("ceph")).as_deref(), Some("zg"));
        assert_eq!(files_only.endpoint(Some("ceph")).as_deref(), Some("http://127.0.0.1:7480"));
        assert_eq!(files_only.endpoint(None), None);
        let by_var = AwsEnv::with_vars(&[("AWS_PROFILE", "ceph"), ("AWS_ENDPOINT_URL", "http://h:1")], Some(dir.clone()));
        assert_eq!(by_var.credentials(None).unwrap().unwrap().access_key, "CEPH");
        assert_eq!(by_var.endpoint(None).as_deref(), Some("http://h:1"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn ca_bundle_and_where_it_came_from() {
        let dir = std::env::temp_dir().join(format!("rbd-ext-aws-ca-{}", std::process::id()));
        std::fs::create_dir_all(dir.join(".aws")).unwrap();
        std::fs::write(dir.join(".aws/config"), "[profile ceph]\nca_bundle = /p/ca.pem\n").unwrap();
        let env = AwsEnv::with_vars(&[("AWS_CA_BUNDLE", "/e/ca.pem")], Some(dir.clone()));
        assert_eq!(env.ca_bundle_origin(Some("ceph")), Some(("/e/ca.pem".into(), "AWS_CA_BUNDLE=/e/ca.pem".into())));
        let files_only = AwsEnv::with_vars(&[], Some(dir.clone()));
        let (path, origin) = files_only.ca_bundle_origin(Some("ceph")).unwrap();
        assert_eq!(path, "/p/ca.pem");
        assert!(origin.starts_with("ca_bundle=/p/ca.pem of [profile ceph] in ") && origin.ends_with(".aws/config"), "{origin}");
        assert_eq!(files_only.ca_bundle(None), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
