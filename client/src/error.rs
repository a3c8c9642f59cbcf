//! The client's error: what failed (image, object, operation) and the errno behind it.
//!
//! Display wording is for people and may change; match on [`Error::errno`] and the `is_*`
//! predicates instead.

use std::fmt;

pub use rbd_ext_cls::Errno;

/// An rbd-ext client error.
pub struct Error {
    errno: Errno,
    context: String,
    hint: Option<Hint>,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

/// What a caller could change to make a refused call succeed. The library's messages name
/// no command-line flags; a front end (the CLI, a binding) maps the hint to its own words,
/// e.g. `rbd-ext` adds "or pass --force" to [`Hint::Force`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Hint {
    /// The parent is open for writing; [`crate::CloneOptions::force`] clones it anyway.
    Force,
    /// Another secret is stored for this bucket and access key; the attach options'
    /// `replace_secret` rotates it.
    ReplaceSecret,
    /// The image size cannot be measured (an `s3.prefix` parent): give it in the options.
    Size,
    /// The S3 server's certificate is not trusted: give a CA file in the S3 settings.
    TrustCa,
    /// A remote parent needs exactly one of a keyring path and a `config://` key reference.
    RemoteCredentials,
    /// A secret must be stored in the config-key store and passed as `config://<key>`; a
    /// front end may offer to store it.
    StoreSecret,
    /// An S3-backed image still has objects only in S3: hydrate it first.
    Hydrate,
}

/// `Result` with the client's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An error `errno` while doing `context` (e.g. "rbd/child: object 5: copy-up").
    pub(crate) fn new(errno: Errno, context: impl Into<String>) -> Error {
        Error { errno, context: context.into(), hint: None, source: None }
    }

    /// Attaches the underlying cause.
    pub(crate) fn with(mut self, cause: impl std::error::Error + Send + Sync + 'static) -> Error {
        self.source = Some(Box::new(cause));
        self
    }

    /// Says what the caller could change (see [`Hint`]).
    pub(crate) fn hinted(mut self, hint: Hint) -> Error {
        self.hint = Some(hint);
        self
    }

    /// Prefixes the context with where it happened (an image spec, a command).
    pub fn context(mut self, outer: impl fmt::Display) -> Error {
        self.context = format!("{outer}: {}", self.context);
        self
    }

    /// The errno (positive).
    pub fn errno(&self) -> Errno {
        self.errno
    }

    /// What failed, without the errno: the [`Display`](fmt::Display) text minus its
    /// trailing `: <errno>`, for front ends that add advice of their own.
    pub fn what(&self) -> &str {
        &self.context
    }

    /// What the caller could change to make the call succeed, if the library knows.
    pub fn hint(&self) -> Option<Hint> {
        self.hint
    }

    /// `ENOENT`.
    pub fn is_not_found(&self) -> bool {
        self.errno == Errno::ENOENT
    }

    /// `EBUSY` (e.g. another writer holds the image).
    pub fn is_busy(&self) -> bool {
        self.errno == Errno::EBUSY
    }

    /// `EEXIST`.
    pub fn is_exists(&self) -> bool {
        self.errno == Errno::EEXIST
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.context, self.errno)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("errno", &self.errno).field("context", &self.context);
        if let Some(h) = &self.hint {
            d.field("hint", h);
        }
        if let Some(s) = &self.source {
            d.field("source", s);
        }
        d.finish()
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_context_and_errno() {
        let e = Error::new(Errno::ENOENT, "object rbd_header.abc: exec rbd_ext.parent_get").context("rbd/child");
        assert_eq!(e.to_string(), "rbd/child: object rbd_header.abc: exec rbd_ext.parent_get: No such file or directory (ENOENT)");
        assert!(e.is_not_found());
        assert!(!e.is_busy());
    }
}
