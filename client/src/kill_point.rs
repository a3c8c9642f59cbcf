//! Test-only crash points (cargo feature `kill-points`; inert in every other build).
//!
//! `RBD_EXT_KILL_POINT=<name>:<n>` makes the n-th arrival at kill point `<name>` in this
//! process announce itself on stderr (`rbd-ext: kill point <name> #<n> reached`) and then
//! block its thread for good, so a test can SIGKILL the process at exactly that step instead
//! of after a guessed delay. Points:
//! - `copyup.written`: a copy-up write landed, its clone-map entry still says pending;
//! - `flatten.object`: flatten is about to copy up one object.

#[cfg(feature = "kill-points")]
pub(crate) fn reached(name: &str) {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let Ok(spec) = std::env::var("RBD_EXT_KILL_POINT") else {
        return;
    };
    let Some((want, n)) = spec.rsplit_once(':') else {
        return;
    };
    let Ok(n) = n.parse::<u64>() else { return };
    if want != name || COUNT.fetch_add(1, Ordering::SeqCst) + 1 != n {
        return;
    }
    eprintln!("rbd-ext: kill point {name} #{n} reached");
    // Wait for the SIGKILL; the process must not get any further on this path.
    loop {
        std::thread::sleep(std::time::Duration::from_secs(3600));
    }
}

#[cfg(not(feature = "kill-points"))]
#[inline(always)]
pub(crate) fn reached(_name: &str) {}
