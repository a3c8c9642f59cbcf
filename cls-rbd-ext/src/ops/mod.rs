//! One request struct per method (the role of upstream `cls_*_ops.h`), shared by the
//! method bodies and the client stubs.

mod version;

pub use version::PingOp;
