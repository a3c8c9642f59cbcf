//! `doctor`: checks that a pool can serve standalone clones and that rbd-ext's bookkeeping
//! in it is sound, and says how to fix each finding.
//!
//! - **Every OSD that serves the pool has the class.** One probe object per PG (a name
//!   chosen so that it hashes to that PG, as the OSDs compute it), `rbd_ext.get_version`
//!   called on each, so every primary OSD of the pool answers: -EOPNOTSUPP names an OSD
//!   without the class, another version an OSD with an old or newer plugin.
//! - **The class may load**: each reached OSD's `osd_class_load_list` and
//!   `osd_class_default_list` (read from the OSD itself, so its local conf counts) must
//!   allow `rbd_ext`.
//! - **The current user's caps** for each role, by probing (EPERM/EACCES means missing).
//! - **Bookkeeping left by stock tools** (see `reconcile`): orphan clone maps, stale
//!   children entries, parents still protected with no child left.
//! - **Snapshots of standalone children** (see `snapshot`): snapshots stock tools made
//!   without the parent overlap (they read zeros where the child inherits data), and
//!   children without their snapshot guard.
//!
//! Checking changes nothing (probe objects are created and removed again; the caps probe is
//! a class write the class refuses);
//! [`Options::fix`] applies the safe fixes: removing orphan clone maps, dropping stale
//! children entries (which lifts a stuck protection), lifting a protection with no
//! children, repairing snapshots whose overlap at snapshot time is certain, arming missing
//! snapshot guards. Scans the pool's default namespace.

use std::collections::BTreeMap;
use std::sync::Arc;

use rbd_ext_cls::codec::SnapId;
use rbd_ext_cls::stubs;
use rbd_ext_cls::types::{clone_map_object, header::RBD_EXT_PROTECT, ChildImageSpec, ParentType};

use crate::error::{Errno, Error, Result};
use crate::header::{self, header_oid, ImageLocation};
use crate::rados::{Cluster, IoCtx, WriteOp, WriteStep};
use crate::reconcile;
use crate::spec::ImageSpec;

/// Prefix of the probe objects (each lives only for its probe call).
const PROBE_PREFIX: &str = "rbd_ext_doctor_probe.";

/// What to check, and whether to fix.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Options {
    /// The pool.
    pub pool: String,
    /// Apply the safe fixes.
    pub fix: bool,
}

impl Options {
    /// Checks pool `pool`, fixing nothing.
    pub fn new(pool: impl Into<String>) -> Self {
        Options { pool: pool.into(), fix: false }
    }

    /// Sets `pool`: The pool.
    pub fn with_pool(mut self, pool: impl Into<String>) -> Self {
        self.pool = pool.into();
        self
    }

    /// Sets `fix`: Apply the safe fixes.
    pub fn with_fix(mut self, fix: bool) -> Self {
        self.fix = fix;
        self
    }
}

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// Something fails or will fail: the exit status says so.
    Error,
    /// Could not be checked, or worth knowing; not a failure.
    Warning,
}

/// One problem, with the exact fix.
#[derive(Debug, Clone)]
pub struct Finding {
    /// Short machine-readable kind: `class-missing`, `class-version`, `class-load-list`,
    /// `cap-missing`, `orphan-clone-map`, `stale-child`, `stuck-protection`, `unchecked`.
    pub kind: &'static str,
    /// Error or warning.
    pub severity: Severity,
    /// What it is about (`osd.2`, `client.alice`, `rbd/parent`, an object name).
    pub subject: String,
    /// What is wrong.
    pub problem: String,
    /// The command or step that fixes it.
    pub fix: String,
    /// Whether `--fix` fixed it.
    pub fixed: bool,
}

/// What one OSD answered.
#[derive(Debug, Clone)]
pub struct OsdReport {
    /// OSD id.
    pub osd: i32,
    /// The PGs of the pool it is primary for (`pool.seed` in hex, as Ceph prints them).
    pub pgs: Vec<String>,
    /// The class version it runs, when it answered.
    pub version: Option<String>,
    /// Why it did not.
    pub error: Option<Errno>,
}

/// The whole report.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// The pool checked.
    pub pool: String,
    /// The version this client expects (its own).
    pub expected_version: String,
    /// The client checked (`client.admin`).
    pub client: String,
    /// Every primary OSD of the pool.
    pub osds: Vec<OsdReport>,
    /// Images and clone maps scanned.
    pub images: u64,
    /// Clone maps scanned.
    pub clone_maps: u64,
    /// Everything found.
    pub findings: Vec<Finding>,
}

impl Report {
    /// Whether everything is fine: no error left unfixed.
    pub fn ok(&self) -> bool {
        self.findings.iter().all(|f| f.severity != Severity::Error || f.fixed)
    }

    fn push(&mut self, kind: &'static str, severity: Severity, subject: impl Into<String>, problem: impl Into<String>, fix: impl Into<String>) -> &mut Finding {
        self.findings.push(Finding { kind, severity, subject: subject.into(), problem: problem.into(), fix: fix.into(), fixed: false });
        self.findings.last_mut().expect("just pushed")
    }
}

/// Runs every check on `opts.pool` (and the fixes with `opts.fix`).
pub fn run(cluster: &Arc<Cluster>, opts: &Options) -> Result<Report> {
    let md = cluster.ioctx(&opts.pool, "").map_err(|e| {
        if e.is_not_found() {
            Error::new(Errno::ENOENT, format!("pool {} does not exist", opts.pool))
        } else {
            e.context(format_args!("pool {}", opts.pool))
        }
    })?;
    let mut report =
        Report { pool: opts.pool.clone(), expected_version: rbd_ext_cls::VERSION.to_string(), client: cluster.user().to_string(), ..Default::default() };
    check_osds(cluster, &md, &mut report)?;
    check_caps(cluster, &md, &mut report);
    check_bookkeeping(cluster, &md, opts.fix, &mut report)?;
    Ok(report)
}

// ------------------------------------------------------------------ OSDs

/// Ceph's `ceph_str_hash_rjenkins` (src/common/ceph_hash.cc), the default object hash of a
/// pool: Bob Jenkins' lookup2 over the name with the golden-ratio seed.
pub fn rjenkins(name: &[u8]) -> u32 {
    fn mix(a: &mut u32, b: &mut u32, c: &mut u32) {
        *a = a.wrapping_sub(*b).wrapping_sub(*c) ^ (*c >> 13);
        *b = b.wrapping_sub(*c).wrapping_sub(*a) ^ (*a << 8);
        *c = c.wrapping_sub(*a).wrapping_sub(*b) ^ (*b >> 13);
        *a = a.wrapping_sub(*b).wrapping_sub(*c) ^ (*c >> 12);
        *b = b.wrapping_sub(*c).wrapping_sub(*a) ^ (*a << 16);
        *c = c.wrapping_sub(*a).wrapping_sub(*b) ^ (*b >> 5);
        *a = a.wrapping_sub(*b).wrapping_sub(*c) ^ (*c >> 3);
        *b = b.wrapping_sub(*c).wrapping_sub(*a) ^ (*a << 10);
        *c = c.wrapping_sub(*a).wrapping_sub(*b) ^ (*b >> 15);
    }
    let word = |k: &[u8]| k.iter().enumerate().fold(0u32, |acc, (i, &b)| acc.wrapping_add((b as u32) << (8 * i)));
    let (mut a, mut b, mut c) = (0x9e37_79b9u32, 0x9e37_79b9u32, 0u32);
    let mut k = name;
    while k.len() >= 12 {
        a = a.wrapping_add(word(&k[0..4]));
        b = b.wrapping_add(word(&k[4..8]));
        c = c.wrapping_add(word(&k[8..12]));
        mix(&mut a, &mut b, &mut c);
        k = &k[12..];
    }
    c = c.wrapping_add(name.len() as u32);
    // The tail: bytes 0-3 into a, 4-7 into b, 8-10 into c above its low (length) byte.
    a = a.wrapping_add(word(&k[..k.len().min(4)]));
    if k.len() > 4 {
        b = b.wrapping_add(word(&k[4..k.len().min(8)]));
    }
    if k.len() > 8 {
        c = c.wrapping_add(word(&k[8..]) << 8);
    }
    mix(&mut a, &mut b, &mut c);
    c
}

/// Ceph's `ceph_stable_mod`: the PG (seed) a hash falls in for `pg_num` PGs.
pub fn stable_mod(x: u32, pg_num: u32) -> u32 {
    let mask = if pg_num <= 1 { 0 } else { u32::MAX >> (pg_num - 1).leading_zeros() };
    if x & mask < pg_num {
        x & mask
    } else {
        x & (mask >> 1)
    }
}

/// One probe object name per PG seed `0..pg_num`.
pub fn probe_names(pg_num: u32) -> Vec<String> {
    let mut names: Vec<Option<String>> = vec![None; pg_num as usize];
    let mut left = pg_num as usize;
    let mut i = 0u64;
    while left > 0 {
        let name = format!("{PROBE_PREFIX}{i}");
        let seed = stable_mod(rjenkins(name.as_bytes()), pg_num) as usize;
        if names[seed].is_none() {
            names[seed] = Some(name);
            left -= 1;
        }
        i += 1;
    }
    names.into_iter().flatten().collect()
}

fn mon_json(cluster: &Cluster, cmd: serde_json::Value) -> Result<serde_json::Value> {
    let (out, _) = cluster.mon_command(&cmd.to_string(), &[])?;
    serde_json::from_slice(&out).map_err(|e| Error::new(Errno::EBADMSG, format!("mon command {}: reply: {e}", cmd["prefix"])))
}

/// Where each probe object lives: (pg as Ceph prints it, acting primary).
fn map_probes(cluster: &Cluster, pool: &str, names: &[String], pg_num: u32) -> Result<Vec<(String, i32)>> {
    let mut out = Vec::new();
    for (seed, name) in names.iter().enumerate() {
        let v = mon_json(cluster, serde_json::json!({ "prefix": "osd map", "pool": pool, "object": name, "format": "json" }))?;
        let pgid = v["pgid"].as_str().unwrap_or("").to_string();
        let primary = v["acting_primary"].as_i64().unwrap_or(-1) as i32;
        // Our hash must agree with the OSDs', or the probes would miss PGs.
        let got = pgid.rsplit('.').next().and_then(|s| u32::from_str_radix(s, 16).ok());
        if got != Some(seed as u32) {
            return Err(Error::new(
                Errno::EIO,
                format!("pool {pool}: object {name} maps to pg {pgid}, expected seed {seed:x} of {pg_num} (is the pool's object hash not rjenkins?)"),
            ));
        }
        out.push((pgid, primary));
    }
    Ok(out)
}

fn check_osds(cluster: &Arc<Cluster>, md: &IoCtx, report: &mut Report) -> Result<()> {
    let pool = md.pool().to_string();
    let v = mon_json(cluster, serde_json::json!({ "prefix": "osd pool get", "pool": pool, "var": "pg_num", "format": "json" }))?;
    let pg_num = v["pg_num"].as_u64().filter(|n| *n > 0).ok_or_else(|| Error::new(Errno::EBADMSG, format!("pool {pool}: no pg_num in {v}")))? as u32;
    let names = probe_names(pg_num);
    let placed = map_probes(cluster, &pool, &names, pg_num)?;
    // Per primary OSD: its PGs and the first probe answer that is not a success.
    let mut by_osd: BTreeMap<i32, OsdReport> = BTreeMap::new();
    for (name, (pgid, primary)) in names.iter().zip(placed) {
        let r = by_osd.entry(primary).or_insert(OsdReport { osd: primary, pgs: Vec::new(), version: None, error: None });
        r.pgs.push(pgid);
        match probe_version(md, name) {
            Ok(Some(v)) => {
                r.version.get_or_insert(v);
            }
            Ok(None) => {}
            Err(e) => {
                r.error.get_or_insert(e);
            }
        }
    }
    let client = report.client.clone();
    for r in by_osd.values() {
        let subject = format!("osd.{}", r.osd);
        if r.osd < 0 {
            report.push(
                "unchecked",
                Severity::Error,
                "pool",
                format!("PGs {} have no acting primary (OSDs down?)", r.pgs.join(" ")),
                "bring the OSDs up: `ceph osd tree`",
            );
            continue;
        }
        match (&r.version, &r.error) {
            (_, Some(Errno::EOPNOTSUPP)) => {
                let dir = osd_config(cluster, r.osd, "osd_class_dir").unwrap_or_else(|_| "its osd_class_dir".into());
                report.push(
                    "class-missing",
                    Severity::Error,
                    &subject,
                    format!("class rbd_ext is not loaded (EOPNOTSUPP) on {subject}, primary for PGs {} of pool {pool}: clones whose objects land there fail", r.pgs.join(" ")),
                    format!("install libcls_rbd_ext.so into {dir} on {subject}'s host, make sure osd_class_load_list and osd_class_default_list allow rbd_ext, then restart {subject}"),
                );
            }
            (_, Some(err @ (Errno::EPERM | Errno::EACCES))) => {
                report.push(
                    "cap-missing",
                    Severity::Error,
                    &client,
                    format!("{client} may not call class rbd_ext in pool {pool} ({err} from {subject})"),
                    cap_fix(&client, "osd", &format!("profile rbd pool={pool}")),
                );
            }
            (_, Some(err)) => {
                report.push("unchecked", Severity::Error, &subject, format!("rbd_ext.get_version on {subject} failed: {err}"), format!("see {subject}'s log"));
            }
            (Some(v), None) if *v != report.expected_version => {
                let expected = report.expected_version.clone();
                report.push(
                    "class-version",
                    Severity::Error,
                    &subject,
                    format!("{subject} runs class rbd_ext {v}, this client is {expected}"),
                    format!("install the libcls_rbd_ext.so of version {expected} on {subject}'s host and restart {subject}"),
                );
            }
            _ => {}
        }
        check_load_lists(cluster, r.osd, report);
    }
    report.osds = by_osd.into_values().collect();
    Ok(())
}

/// Asks the OSD holding object `name` for its class version. The OSD looks the class up
/// before the object: a missing class is EOPNOTSUPP whether the object exists or not, but
/// a present class called on a missing object is ENOENT. So the object is created for the
/// call and removed after; `Ok(None)` (class present, version unknown) when the user may
/// not create it.
fn probe_version(md: &IoCtx, name: &str) -> std::result::Result<Option<String>, Errno> {
    let call = || md.exec(name, &stubs::get_version()).and_then(|out| stubs::decode_reply::<String>(&out).map_err(|e| Error::new(e, "get_version reply")));
    match call() {
        Ok(v) => return Ok(Some(v)),
        Err(e) if !e.is_not_found() => return Err(e.errno()),
        Err(_) => {}
    }
    match md.write(name, &WriteOp { steps: vec![WriteStep::Create { exclusive: true }] }) {
        Ok(()) => {
            let r = call();
            let _ = md.remove(name);
            r.map(Some).map_err(|e| e.errno())
        }
        Err(e) if matches!(e.errno(), Errno::EPERM | Errno::EACCES) => Ok(None),
        Err(e) => Err(e.errno()),
    }
}

/// An OSD's running value of a config option (`ceph tell osd.N config get KEY`).
fn osd_config(cluster: &Cluster, osd: i32, key: &str) -> Result<String> {
    let (out, _) = cluster.osd_command(osd, &serde_json::json!({ "prefix": "config get", "var": key, "format": "json" }).to_string())?;
    let v: serde_json::Value = serde_json::from_slice(&out).map_err(|e| Error::new(Errno::EBADMSG, format!("osd.{osd}: config get {key}: {e}")))?;
    v[key].as_str().map(str::to_string).ok_or_else(|| Error::new(Errno::EBADMSG, format!("osd.{osd}: config get {key}: {v}")))
}

/// Whether a class list (`osd_class_load_list` syntax: names separated by spaces or
/// commas, `*` for all) admits `rbd_ext`.
pub fn list_allows(list: &str) -> bool {
    list.split(|c: char| c.is_whitespace() || c == ',').any(|w| w == "*" || w == "rbd_ext")
}

fn check_load_lists(cluster: &Cluster, osd: i32, report: &mut Report) {
    for key in ["osd_class_load_list", "osd_class_default_list"] {
        match osd_config(cluster, osd, key) {
            Ok(v) if list_allows(&v) => {}
            Ok(v) => {
                report.push(
                    "class-load-list",
                    Severity::Error,
                    format!("osd.{osd}"),
                    format!("osd.{osd}: {key} is '{v}', which does not allow rbd_ext"),
                    format!(
                        "ceph config set osd.{osd} {key} '{} rbd_ext' (and remove any '{}' line from its ceph.conf), then restart osd.{osd}",
                        v.trim(),
                        key.replace('_', " ")
                    ),
                );
            }
            Err(e) => {
                report.push(
                    "unchecked",
                    Severity::Warning,
                    format!("osd.{osd}"),
                    format!("could not read {key} of osd.{osd}: {}", e.errno()),
                    format!("check by hand: ceph tell osd.{osd} config get {key} (needs a user with osd 'allow *')"),
                );
            }
        }
    }
}

// ------------------------------------------------------------------ caps

fn cap_fix(client: &str, service: &str, cap: &str) -> String {
    format!(
        "add `{cap}` to {client}'s {service} caps: ceph auth caps {client} ... {service} '<its current {service} caps>, {cap}' (see them with `ceph auth get {client}`; the README's Caps section lists each role)"
    )
}

fn check_caps(cluster: &Arc<Cluster>, md: &IoCtx, report: &mut Report) {
    let client = report.client.clone();
    let pool = md.pool().to_string();
    // Writing clones: a class write call that the class refuses (no such object) unless
    // the OSD refuses it first for want of caps.
    let probe = ChildImageSpec { pool_id: md.pool_id(), pool_namespace: String::new(), image_id: "doctorprobe".into() };
    match md.exec_write(&format!("{PROBE_PREFIX}caps"), &stubs::child_detach(&probe)) {
        Err(e) if e.errno() == Errno::EPERM || e.errno() == Errno::EACCES => {
            report.push(
                "cap-missing",
                Severity::Error,
                &client,
                format!("{client} may not write through class rbd_ext in pool {pool} ({}): it cannot clone, write or remove clones there", e.errno()),
                cap_fix(&client, "osd", &format!("profile rbd pool={pool}")),
            );
        }
        _ => {}
    }
    // Reading S3-backed children and remote parents: their secrets are config-key references.
    let get = serde_json::json!({ "prefix": "config-key get", "key": "rbd-ext/doctor-probe" }).to_string();
    match cluster.mon_command(&get, &[]) {
        Err(e) if e.errno() == Errno::EPERM || e.errno() == Errno::EACCES => {
            report.push(
                "cap-missing",
                Severity::Error,
                &client,
                format!(
                    "{client} may not read secret references (config-key get rbd-ext/...: {}): it cannot read S3-backed children or children of remote parents",
                    e.errno()
                ),
                cap_fix(&client, "mon", "allow command \"config-key get\" with key prefix rbd-ext/"),
            );
        }
        _ => {}
    }
}

// ------------------------------------------------------------- bookkeeping

fn check_bookkeeping(cluster: &Arc<Cluster>, md: &IoCtx, fix: bool, report: &mut Report) -> Result<()> {
    let pool = md.pool().to_string();
    let mut headers = Vec::new();
    let mut maps = Vec::new();
    for name in md.list_objects("rbd_")? {
        if let Some(id) = name.strip_prefix("rbd_header.") {
            headers.push(id.to_string());
        } else if let Some(id) = name.strip_prefix("rbd_clone_map.") {
            maps.push(id.to_string());
        }
    }
    report.images = headers.len() as u64;
    report.clone_maps = maps.len() as u64;
    for id in &maps {
        let hdr = match header::read_header(md, id) {
            Ok(h) => Some(h),
            Err(e) if e.is_not_found() => None,
            Err(e) => return Err(e.context(format_args!("pool {pool}: image id {id}"))),
        };
        if !reconcile::clone_map_is_orphan(hdr.as_ref()) {
            continue;
        }
        let oid = clone_map_object(id);
        let why = if hdr.is_none() { "its image is gone (removed by stock rbd rm)" } else { "its image has no parent (flattened by stock rbd flatten)" };
        let f = report.push(
            "orphan-clone-map",
            Severity::Error,
            &oid,
            format!("orphan clone map {pool}/{oid}: {why}"),
            format!("rados -p {pool} rm {oid}   (or: rbd-ext doctor --pool {pool} --fix)"),
        );
        if fix {
            // Looked at again just before: only a map that is still an orphan goes.
            f.fixed = reconcile::drop_orphan_clone_map(md, id, hdr.as_ref())?.is_some() || !reconcile::has_clone_map(md, id)?;
        }
    }
    for id in &headers {
        let hoid = header_oid(id);
        let kids = crate::manage::list_child_specs(md, id)?;
        let protected = md.omap_get(&hoid, RBD_EXT_PROTECT)?.is_some();
        let remote = md.omap_list(&hoid, crate::manage::REMOTE_CHILDREN_PREFIX)?;
        if kids.is_empty() && !(protected && remote.is_empty()) {
            continue;
        }
        let name = header::lookup_name(md, id).unwrap_or_else(|_| id.clone());
        let spec = ImageSpec::new(&pool, &name);
        let data = md.clone();
        let loc = ImageLocation { spec: spec.clone(), id: id.clone(), md: md.clone(), data };
        let mut stale = 0;
        for c in &kids {
            if !crate::manage::child_points_at(cluster, &loc, c)? {
                stale += 1;
                report.push(
                    "stale-child",
                    Severity::Error,
                    spec.to_string(),
                    format!(
                        "image {spec} lists child pool {} namespace '{}' id {}, which is gone or no longer its child (removed or flattened by stock rbd)",
                        c.pool_id, c.pool_namespace, c.image_id
                    ),
                    format!("rbd-ext children {spec}   (drops stale entries; or: rbd-ext doctor --pool {pool} --fix)"),
                );
            }
        }
        let stuck = protected && remote.is_empty() && stale == kids.len();
        if stuck {
            report.push(
                "stuck-protection",
                Severity::Error,
                spec.to_string(),
                format!("image {spec} is protected as a parent (rbd-ext protection record and its feature bits) but has no live child: stock rbd rm/resize/write fail with EROFS"),
                if kids.is_empty() {
                    format!("rbd-ext doctor --pool {pool} --fix   (lifts the protection)")
                } else {
                    format!("rbd-ext children {spec}   (dropping the last stale entry lifts the protection; or: rbd-ext doctor --pool {pool} --fix)")
                },
            );
        }
        if fix && (stale > 0 || stuck) {
            let n = report.findings.len();
            let first = n - stale - usize::from(stuck);
            if stale > 0 {
                crate::manage::reconcile_children(cluster, &loc, usize::MAX).map_err(|e| e.context(format_args!("image {spec}: drop stale children")))?;
            }
            if stuck && kids.is_empty() {
                lift_protection(md, id).map_err(|e| e.context(format_args!("image {spec}: lift protection")))?;
            }
            for f in &mut report.findings[first..n] {
                f.fixed = true;
            }
        }
    }
    check_snapshots(cluster, md, &headers, fix, report)
}

/// Snapshots of standalone children that read zeros where the child inherits data (made by
/// stock tools without the parent overlap), and standalone children whose snapshot guard is
/// missing (stock `rbd snap create` would make such snapshots). `fix` repairs the snapshots
/// whose overlap at snapshot time is certain (`snapshot::broken_snapshots` says when) and
/// arms the missing guards.
fn check_snapshots(cluster: &Arc<Cluster>, md: &IoCtx, headers: &[String], fix: bool, report: &mut Report) -> Result<()> {
    let pool = md.pool().to_string();
    for id in headers {
        let hdr = match header::read_header(md, id) {
            Ok(h) => h,
            Err(e) if e.is_not_found() => continue,
            Err(e) => return Err(e.context(format_args!("pool {pool}: image id {id}"))),
        };
        let head_parent = hdr.parent.as_ref().is_some_and(|p| p.snap_id == SnapId::NOSNAP && p.parent_type != ParentType::S3Source);
        if !head_parent && hdr.snap_guard.is_none() {
            continue;
        }
        let name = header::lookup_name(md, id).unwrap_or_else(|_| id.clone());
        let spec = ImageSpec::new(&pool, &name);
        // Nothing reads a parent any more (flattened by stock `rbd flatten`, or its last
        // snapshot that did was removed): the guard only refuses stock snapshots that would
        // now be right, and a HEAD-less parent record is left over.
        let reads_parent = hdr.overlap() > 0 || crate::snapshot::snapshots_read_parent(md, id)?;
        if !reads_parent {
            let f = report.push(
                "snapshot-guard-stale",
                Severity::Warning,
                spec.to_string(),
                format!("image {spec} reads no parent any more but keeps rbd-ext's snapshot guard (stock `rbd snap create` is refused needlessly)"),
                format!("rbd-ext doctor --pool {pool} --fix   (removes the guard and the left-over parent record)"),
            );
            if fix {
                crate::snapshot::drop_guard(md, id, &hdr).map_err(|e| e.context(format_args!("image {spec}")))?;
                f.fixed = true;
            }
            continue;
        }
        for b in crate::snapshot::broken_snapshots(cluster, md, id, &hdr)? {
            let safe = b.repair_overlap.is_some();
            let problem = if safe {
                format!("snapshot {spec}@{} was made by stock tools without the parent overlap: it reads zeros where the child inherits data", b.name)
            } else {
                format!("snapshot {spec}@{} was made by stock tools without the parent overlap: it reads zeros where the child inherits data; not repairable safely: {}", b.name, b.why)
            };
            let fix_text = if safe {
                format!("rbd-ext doctor --pool {pool} --fix   (gives it the parent overlap the child had when it was taken)")
            } else {
                format!("rbd snap rm {spec}@{}   (then take it again with rbd-ext snap create)", b.name)
            };
            let f = report.push("snapshot-reads-zeros", Severity::Error, format!("{spec}@{}", b.name), problem, fix_text);
            if fix && safe {
                crate::snapshot::repair_snapshot(md, id, &b).map_err(|e| e.context(format_args!("image {spec}: snapshot {}", b.name)))?;
                f.fixed = true;
            }
        }
        if crate::snapshot::guard_missing(md, id, &hdr)? {
            let f = report.push(
                "snapshot-guard-missing",
                Severity::Error,
                spec.to_string(),
                format!("stock `rbd snap create` is not refused on standalone child {spec}: its snapshots would read zeros where the child inherits data (made by an older rbd-ext, or `rbd snap limit set|clear` lifted the guard)"),
                format!("rbd-ext doctor --pool {pool} --fix   (arms the snapshot guard; take snapshots with rbd-ext snap create)"),
            );
            if fix {
                crate::snapshot::arm_guard(md, id, &hdr).map_err(|e| e.context(format_args!("image {spec}")))?;
                f.fixed = true;
            }
        }
    }
    Ok(())
}

/// Lifts the protection of a parent whose children set is empty but whose protection was
/// left behind: the class restores the prior features with the detach that empties the
/// set, so a placeholder child is attached and detached (a crash between the two leaves an
/// entry for an image that does not exist, which the next reconcile drops).
fn lift_protection(md: &IoCtx, id: &str) -> Result<()> {
    let placeholder = ChildImageSpec { pool_id: md.pool_id(), pool_namespace: md.namespace().to_string(), image_id: "rbdextdoctorunprotect".into() };
    let hoid = header_oid(id);
    md.exec_write(&hoid, &stubs::child_attach(&placeholder))?;
    md.exec_write(&hoid, &stubs::child_detach(&placeholder))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rjenkins_matches_ceph() {
        // From `ceph osd map rbd NAME` on a Pacific cluster: "pg 2.<hash>".
        assert_eq!(rjenkins(b"foo"), 0x7fc1f406);
        assert_eq!(rjenkins(b"rbd_directory"), 0x30a98c1c);
        // Exactly one 12-byte block, a full 11-byte tail, a long name, one byte, none.
        assert_eq!(rjenkins(b"abcdefghijkl"), 0x0b1b3ea5);
        assert_eq!(rjenkins(b"abcdefghijk"), 0xe52b8e4c);
        assert_eq!(rjenkins(b"rbd_ext_doctor_probe.17"), 0x35ddeb64);
        assert_eq!(rjenkins(b"x"), 0xd6d9af33);
    }

    #[test]
    fn stable_mod_as_ceph() {
        assert_eq!(stable_mod(0x7fc1f406, 8), 6);
        assert_eq!(stable_mod(13, 12), 13 & 7);
        assert_eq!(stable_mod(11, 12), 11);
        assert_eq!(stable_mod(5, 1), 0);
    }

    #[test]
    fn one_probe_per_pg() {
        for pg_num in [1, 8, 12, 32] {
            let names = probe_names(pg_num);
            let seeds: Vec<u32> = names.iter().map(|n| stable_mod(rjenkins(n.as_bytes()), pg_num)).collect();
            assert_eq!(seeds, (0..pg_num).collect::<Vec<_>>());
        }
    }

    #[test]
    fn class_lists() {
        assert!(list_allows("*"));
        assert!(list_allows("rbd lock rbd_ext"));
        assert!(list_allows("rbd,rbd_ext"));
        assert!(!list_allows("cephfs hello journal lock log numops otp rbd refcount rgw"));
        assert!(!list_allows("rbd_ext_old"));
    }
}
