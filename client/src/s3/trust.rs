//! Which CAs an `https://` client trusts, and how certificate errors say so.
//!
//! In order, the first that applies:
//! 1. a CA file of the configuration (`S3Config::ca_pem`: `s3.ca_file`, `--ca-file`,
//!    or `AWS_CA_BUNDLE` for `s3 publish`): exactly its certificates;
//! 2. `SSL_CERT_FILE` (a PEM bundle) and `SSL_CERT_DIR` (`:`-separated directories of PEM
//!    files), when either is set, in place of the system's store (as OpenSSL, curl and
//!    rustls-native-certs read them); one that cannot be read or holds no certificate is an
//!    error (EINVAL), never a silent fall-back to other roots;
//! 3. the system's store; Mozilla's roots if the system has none.
//!
//! `Trust::describe` names the source that was used, so a certificate error says which
//! CAs were trusted and only suggests a remedy that would take effect.

use std::path::{Path, PathBuf};

use hyper_rustls::ConfigBuilderExt;
use rustls::client::WantsClientCert;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, ConfigBuilder, RootCertStore, WantsVerifier};

use super::client::S3Config;
use super::error::S3Error;

/// `SSL_CERT_FILE` and `SSL_CERT_DIR` as found in the environment (empty values are unset).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct CertEnv {
    /// `SSL_CERT_FILE`.
    pub(crate) file: Option<PathBuf>,
    /// `SSL_CERT_DIR`, split on `:`.
    pub(crate) dirs: Vec<PathBuf>,
}

impl CertEnv {
    /// This process's environment.
    pub(crate) fn from_process() -> CertEnv {
        let file = std::env::var_os("SSL_CERT_FILE").filter(|v| !v.is_empty()).map(PathBuf::from);
        let dirs = std::env::var_os("SSL_CERT_DIR").map(|v| std::env::split_paths(&v).filter(|p| !p.as_os_str().is_empty()).collect()).unwrap_or_default();
        CertEnv { file, dirs }
    }

    fn is_set(&self) -> bool {
        self.file.is_some() || !self.dirs.is_empty()
    }

    /// `SSL_CERT_FILE=/a` and/or `SSL_CERT_DIR=/b:/c`.
    fn name(&self) -> String {
        let mut parts = Vec::new();
        if let Some(f) = &self.file {
            parts.push(format!("SSL_CERT_FILE={}", f.display()));
        }
        if !self.dirs.is_empty() {
            let dirs: Vec<String> = self.dirs.iter().map(|d| d.display().to_string()).collect();
            parts.push(format!("SSL_CERT_DIR={}", dirs.join(":")));
        }
        parts.join(" and ")
    }
}

/// Where the roots came from (see the module doc).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Source {
    /// The configuration's CA file; its origin, if the configuration named one.
    CaFile(Option<String>),
    /// `SSL_CERT_FILE` / `SSL_CERT_DIR`.
    Env(CertEnv),
    /// The system's store.
    System,
    /// Mozilla's roots (the system has none).
    Mozilla,
}

/// The trust roots of one client and how to talk about them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Trust {
    source: Source,
    /// `SSL_CERT_FILE`/`SSL_CERT_DIR` were set but not read (a CA file came first).
    env_ignored: Option<CertEnv>,
}

impl Trust {
    /// Builds the verifier of `cfg` into `builder`, reading `env` for step 2.
    /// EINVAL for a CA file or `SSL_CERT_*` that holds no usable certificate.
    pub(crate) fn build(
        cfg: &S3Config,
        env: &CertEnv,
        builder: impl Fn() -> Result<ConfigBuilder<ClientConfig, WantsVerifier>, S3Error>,
    ) -> Result<(Trust, ConfigBuilder<ClientConfig, WantsClientCert>), S3Error> {
        if let Some(pem) = &cfg.ca_pem {
            let env_ignored = env.is_set().then(|| env.clone());
            let trust = Trust { source: Source::CaFile(cfg.ca_origin.clone()), env_ignored };
            return Ok((trust, builder()?.with_root_certificates(ca_roots(pem)?)));
        }
        if env.is_set() {
            let roots = env_roots(env)?;
            return Ok((Trust { source: Source::Env(env.clone()), env_ignored: None }, builder()?.with_root_certificates(roots)));
        }
        match builder()?.with_native_roots() {
            Ok(b) => Ok((Trust { source: Source::System, env_ignored: None }, b)),
            Err(_) => Ok((Trust { source: Source::Mozilla, env_ignored: None }, builder()?.with_webpki_roots())),
        }
    }

    /// What a certificate error adds after what is wrong: the CAs trusted and how to
    /// trust a private CA (only ways that would take effect).
    pub(crate) fn describe(&self) -> String {
        let trusted = match &self.source {
            Source::CaFile(Some(origin)) => format!("only the CAs in {origin}"),
            Source::CaFile(None) => "only the CAs in the CA file of the S3 settings (s3.ca_file)".to_string(),
            Source::Env(env) => format!("the CAs in {}", env.name()),
            Source::System => "the system's CA certificates".to_string(),
            Source::Mozilla => "Mozilla's CA certificates (the system has none)".to_string(),
        };
        let mut s = format!("trusted: {trusted}");
        if let Some(env) = &self.env_ignored {
            let verb = if env.file.is_some() && !env.dirs.is_empty() { "are" } else { "is" };
            s.push_str(&format!(" ({} {verb} not read when a CA file is named)", env.name()));
        }
        s.push_str("; to trust a private CA, name its PEM file in the S3 settings (s3.ca_file, a path or config://KEY)");
        if !matches!(self.source, Source::CaFile(_)) {
            s.push_str(" or in SSL_CERT_FILE");
        }
        s
    }
}

/// The trust roots of a private CA bundle (PEM); EINVAL if it holds no usable certificate.
fn ca_roots(pem: &[u8]) -> Result<RootCertStore, S3Error> {
    let mut roots = RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(pem) {
        let c = c.map_err(|e| S3Error::invalid("CA file", format!("not PEM certificates: {e}")))?;
        roots.add(c).map_err(|e| S3Error::invalid("CA file", format!("unusable certificate: {e}")))?;
    }
    if roots.is_empty() {
        return Err(S3Error::invalid("CA file", "no certificate in it (expected PEM `BEGIN CERTIFICATE` blocks)"));
    }
    Ok(roots)
}

/// The roots of `SSL_CERT_FILE` and `SSL_CERT_DIR`. The file must be readable and hold a
/// usable certificate; each directory must be readable, and its files are read as OpenSSL
/// does with a bundle (each file once, however many links name it; files that are no PEM
/// certificates are skipped). EINVAL when nothing usable is found.
fn env_roots(env: &CertEnv) -> Result<RootCertStore, S3Error> {
    let mut roots = RootCertStore::empty();
    if let Some(f) = &env.file {
        let pem = std::fs::read(f).map_err(|e| S3Error::invalid("SSL_CERT_FILE", format!("{}: {e}", f.display())))?;
        if add_pem(&mut roots, &pem) == 0 {
            return Err(S3Error::invalid("SSL_CERT_FILE", format!("{}: no usable certificate in it (expected PEM `BEGIN CERTIFICATE` blocks)", f.display())));
        }
    }
    let mut seen = std::collections::HashSet::new();
    for dir in &env.dirs {
        let entries = std::fs::read_dir(dir).map_err(|e| S3Error::invalid("SSL_CERT_DIR", format!("{}: {e}", dir.display())))?;
        for entry in entries.flatten() {
            read_dir_file(&entry.path(), &mut seen, &mut roots);
        }
    }
    if roots.is_empty() {
        return Err(S3Error::invalid("SSL_CERT_DIR", format!("no usable certificate in {}", env.name())));
    }
    Ok(roots)
}

/// Adds the certificates of one file of a certificate directory, unless it was read already.
fn read_dir_file(path: &Path, seen: &mut std::collections::HashSet<(u64, u64)>, roots: &mut RootCertStore) {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::metadata(path) else { return };
    if !meta.is_file() || !seen.insert((meta.dev(), meta.ino())) {
        return;
    }
    if let Ok(pem) = std::fs::read(path) {
        add_pem(roots, &pem);
    }
}

/// Adds every usable certificate of a PEM text; how many were added.
fn add_pem(roots: &mut RootCertStore, pem: &[u8]) -> usize {
    let before = roots.len();
    for c in CertificateDer::pem_slice_iter(pem).map_while(Result::ok) {
        let _ = roots.add(c);
    }
    roots.len() - before
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> S3Config {
        S3Config::new("https://s3.example.com", "us-east-1", "b")
    }

    fn builder() -> Result<ConfigBuilder<ClientConfig, WantsVerifier>, S3Error> {
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        Ok(ClientConfig::builder_with_provider(provider).with_safe_default_protocol_versions().unwrap())
    }

    /// A system bundle to borrow real certificates from, if this host has one.
    fn system_bundle() -> Option<PathBuf> {
        ["/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt"].iter().map(PathBuf::from).find(|p| p.is_file())
    }

    fn error(env: CertEnv) -> S3Error {
        match Trust::build(&cfg(), &env, builder) {
            Ok((t, _)) => panic!("trusted {t:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn unusable_ssl_cert_file_is_an_error_not_a_fall_back() {
        let dir = std::env::temp_dir().join(format!("rbd-ext-trust-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let e = error(CertEnv { file: Some(dir.join("missing.pem")), dirs: vec![] });
        assert_eq!(e.errno(), crate::Errno::EINVAL);
        assert!(e.to_string().contains("SSL_CERT_FILE") && e.to_string().contains("missing.pem"), "{e}");
        let junk = dir.join("junk.pem");
        std::fs::write(&junk, "not a certificate\n").unwrap();
        let e = error(CertEnv { file: Some(junk), dirs: vec![] });
        assert!(e.to_string().contains("no usable certificate"), "{e}");
        let empty = dir.join("empty.d");
        std::fs::create_dir_all(&empty).unwrap();
        let e = error(CertEnv { file: None, dirs: vec![empty] });
        assert!(e.to_string().contains("SSL_CERT_DIR"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn sources_in_order_and_what_errors_say() {
        let Some(bundle) = system_bundle() else { return };
        let env = CertEnv { file: Some(bundle.clone()), dirs: vec![] };
        let (t, _) = Trust::build(&cfg(), &env, builder).unwrap();
        let d = t.describe();
        assert!(d.contains(&format!("trusted: the CAs in SSL_CERT_FILE={}", bundle.display())) && d.ends_with("or in SSL_CERT_FILE"), "{d}");

        // A CA file wins over SSL_CERT_FILE, and the message says SSL_CERT_FILE was not read.
        let mut c = cfg();
        c.ca_pem = Some(std::fs::read(&bundle).unwrap());
        c.ca_origin = Some("AWS_CA_BUNDLE=/x.pem".into());
        let (t, _) = Trust::build(&c, &env, builder).unwrap();
        let d = t.describe();
        assert!(d.contains("only the CAs in AWS_CA_BUNDLE=/x.pem") && d.contains("is not read when a CA file is named"), "{d}");
        assert!(!d.contains("or in SSL_CERT_FILE"), "{d}");

        // Nothing set: the system's store (or Mozilla's).
        let (t, _) = Trust::build(&cfg(), &CertEnv::default(), builder).unwrap();
        assert!(matches!(t.source, Source::System | Source::Mozilla));

        // SSL_CERT_DIR alone, with the bundle's directory.
        let env = CertEnv { file: None, dirs: vec![bundle.parent().unwrap().to_path_buf()] };
        let (t, _) = Trust::build(&cfg(), &env, builder).unwrap();
        assert!(t.describe().contains("SSL_CERT_DIR="));
    }
}
