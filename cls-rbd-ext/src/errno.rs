//! The error type of every method: a positive errno, negated only at the FFI edge.

use std::fmt;

/// A positive `errno` value returned by a method (the OSD sees it negated).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Errno(pub i32);

macro_rules! errnos {
    ($($name:ident = $val:expr, $text:expr;)*) => {
        impl Errno {
            $(#[doc = $text] pub const $name: Errno = Errno($val);)*

            /// The C name of the errno (`"EINVAL"`), or `None` for values this table lacks.
            pub fn name(self) -> Option<&'static str> {
                match self.0 { $($val => Some(stringify!($name)),)* _ => None }
            }

            /// A short description, as `strerror` would give.
            pub fn text(self) -> &'static str {
                match self.0 { $($val => $text,)* _ => "unknown error" }
            }
        }
    };
}

// Linux values (the only platform Ceph's OSD runs on).
errnos! {
    EPERM = 1, "Operation not permitted";
    ENOENT = 2, "No such file or directory";
    EIO = 5, "Input/output error";
    ENOEXEC = 8, "Exec format error";
    EBADF = 9, "Bad file descriptor";
    EAGAIN = 11, "Resource temporarily unavailable";
    ENOMEM = 12, "Cannot allocate memory";
    EACCES = 13, "Permission denied";
    EBUSY = 16, "Device or resource busy";
    EEXIST = 17, "File exists";
    EXDEV = 18, "Invalid cross-device link";
    EINVAL = 22, "Invalid argument";
    EFBIG = 27, "File too large";
    EROFS = 30, "Read-only file system";
    EPIPE = 32, "Broken pipe";
    ERANGE = 34, "Numerical result out of range";
    ENOSYS = 38, "Function not implemented";
    ENOTEMPTY = 39, "Directory not empty";
    ENODATA = 61, "No data available";
    EPROTO = 71, "Protocol error";
    EOVERFLOW = 75, "Value too large for defined data type";
    EBADMSG = 74, "Bad message";
    EOPNOTSUPP = 95, "Operation not supported";
    ECONNRESET = 104, "Connection reset by peer";
    ENOTCONN = 107, "Transport endpoint is not connected";
    ESHUTDOWN = 108, "Cannot send after transport endpoint shutdown (client blocklisted)";
    ETIMEDOUT = 110, "Connection timed out";
    ECONNREFUSED = 111, "Connection refused";
    EHOSTDOWN = 112, "Host is down";
    EHOSTUNREACH = 113, "No route to host";
    ESTALE = 116, "Stale file handle";
    EDQUOT = 122, "Disk quota exceeded";
    ECANCELED = 125, "Operation canceled";
}

impl Errno {
    /// What librados returns to a blocklisted client (`ESHUTDOWN`, Ceph's `EBLOCKLISTED`).
    pub const EBLOCKLISTED: Errno = Errno::ESHUTDOWN;

    /// From a librados/objclass style return value (negative errno). Non-negative values map to
    /// `EIO`, since a caller only converts failures.
    pub fn from_neg(ret: i64) -> Errno {
        if ret < 0 && ret >= i64::from(i32::MIN) {
            Errno((-ret) as i32)
        } else {
            Errno::EIO
        }
    }

    /// The value returned to the OSD: `-errno`.
    pub fn to_neg(self) -> i32 {
        -self.0
    }
}

impl fmt::Debug for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => write!(f, "{n}"),
            None => write!(f, "Errno({})", self.0),
        }
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.text(), self.name().unwrap_or("errno"))?;
        if self.name().is_none() {
            write!(f, " {}", self.0)?;
        }
        Ok(())
    }
}

impl std::error::Error for Errno {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neg_round_trip_and_names() {
        assert_eq!(Errno::from_neg(-22), Errno::EINVAL);
        assert_eq!(Errno::EINVAL.to_neg(), -22);
        assert_eq!(Errno::from_neg(5), Errno::EIO);
        assert_eq!(format!("{:?}", Errno::ENOENT), "ENOENT");
        assert_eq!(Errno::EEXIST.to_string(), "File exists (EEXIST)");
        assert_eq!(format!("{:?}", Errno(4242)), "Errno(4242)");
    }
}
