//! The command line as clap derive structs (DESIGN.md §6): global options and verbs mirror
//! the stock `rbd` CLI, so scripts and habits carry over.
//!
//! Only argument syntax lives here (including the value parsers for sizes and feature
//! names, so that a malformed value is a usage error, exit status 2). What each verb does
//! is in `commands/<verb>.rs`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Standalone copy-on-write RBD clones: clone an image's HEAD, inspect, read, write,
/// flatten and remove clones.
#[derive(Debug, Parser)]
#[command(name = "rbd-ext", version, about, long_about = None, max_term_width = 100)]
pub struct Cli {
    /// How to reach the cluster and how to print.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// The verb.
    #[command(subcommand)]
    pub command: Command,
}

/// Options every verb takes, as `rbd` spells them.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Ceph configuration file (default: $CEPH_CONF, then the standard search path).
    #[arg(short = 'c', long = "conf", global = true, value_name = "PATH")]
    pub conf: Option<String>,
    /// Keyring file, overriding the configuration.
    #[arg(short = 'k', long, global = true, value_name = "PATH")]
    pub keyring: Option<String>,
    /// Client id, without `client.`.
    #[arg(short = 'i', long, global = true, value_name = "ID", default_value = "admin", conflicts_with = "name")]
    pub id: String,
    /// Client name (`client.ID`), an alternative to --id.
    #[arg(short = 'n', long, global = true, value_name = "TYPE.ID")]
    pub name: Option<String>,
    /// Cluster name.
    #[arg(long, global = true, value_name = "NAME")]
    pub cluster: Option<String>,
    /// Pool used for image specs that name none.
    #[arg(short = 'p', long, global = true, value_name = "POOL", default_value = rbd_ext::spec::DEFAULT_POOL)]
    pub pool: String,
    /// Output format.
    #[arg(long, global = true, value_enum, default_value_t = Format::Plain)]
    pub format: Format,
    /// Indent JSON output.
    #[arg(long, global = true)]
    pub pretty_format: bool,
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// For people.
    Plain,
    /// For programs (one JSON document on stdout).
    Json,
}

/// The verbs.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create CHILD, a standalone clone of PARENT's HEAD (not of a snapshot).
    #[command(name = "clone-standalone")]
    CloneStandalone(CloneArgs),
    /// Show an image: size, id, layout, features, parent and clone-map summary.
    Info(ImageArg),
    /// List the standalone clones of an image.
    Children(ChildrenArgs),
    /// Read a byte range of an image (through to its parent) to a file or stdout.
    Read(ReadArgs),
    /// Write a file or stdin into an image at a byte offset (copy-on-write).
    Write(WriteArgs),
    /// Write the whole logical image to a file or stdout.
    Export(ExportArgs),
    /// Create an image from a file or stdin.
    Import(ImportArgs),
    /// Copy every inherited object into the clone and detach it from its parent.
    Flatten(ImageArg),
    /// Remove an image (refused while it has standalone clones).
    #[command(visible_alias = "remove")]
    Rm(ImageArg),
    /// Grow or shrink an image.
    Resize(ResizeArgs),
    /// Inspect, verify or repair a clone's clone map.
    #[command(name = "clone-map", subcommand)]
    CloneMap(CloneMapCommand),
    /// List or break image locks, as `rbd lock`.
    #[command(subcommand)]
    Lock(LockCommand),
    /// Measure read or write performance through rbd-ext, as `rbd bench`.
    Bench(BenchArgs),
}

/// A single image spec.
#[derive(Debug, Args)]
pub struct ImageArg {
    /// Image spec: [pool/[namespace/]]image.
    #[arg(value_name = "IMAGE")]
    pub image: String,
}

/// `clone-standalone`.
#[derive(Debug, Args)]
pub struct CloneArgs {
    /// Parent image: [pool/[namespace/]]image (HEAD; snapshots are for stock `rbd clone`).
    #[arg(value_name = "PARENT")]
    pub parent: String,
    /// New child image: [pool/[namespace/]]image.
    #[arg(value_name = "CHILD")]
    pub child: String,
    /// Child features (repeatable or comma-separated; default: the parent's). Names: layering,
    /// striping, exclusive-lock, object-map, fast-diff, deep-flatten, data-pool.
    #[arg(long = "image-feature", value_name = "FEATURE", value_delimiter = ',', value_parser = parse_feature)]
    pub image_feature: Vec<u64>,
    /// Clone even if the parent is open for writing by another client.
    #[arg(long)]
    pub force: bool,
}

/// `children`.
#[derive(Debug, Args)]
pub struct ChildrenArgs {
    /// Parent image: [pool/[namespace/]]image.
    #[arg(value_name = "IMAGE")]
    pub image: String,
    /// Also list the children's children, recursively.
    #[arg(long)]
    pub descendants: bool,
}

/// `read`.
#[derive(Debug, Args)]
pub struct ReadArgs {
    /// Image spec.
    #[arg(value_name = "IMAGE")]
    pub image: String,
    /// First byte (suffixes K, M, G, T: powers of 1024).
    #[arg(long, value_parser = parse_bytes)]
    pub offset: u64,
    /// Number of bytes (suffixes K, M, G, T).
    #[arg(long, value_parser = parse_bytes)]
    pub length: u64,
    /// Destination file, `-` for stdout (the default).
    #[arg(short = 'o', long, value_name = "FILE|-", default_value = "-")]
    pub output: PathBuf,
}

/// `write`.
#[derive(Debug, Args)]
pub struct WriteArgs {
    /// Image spec.
    #[arg(value_name = "IMAGE")]
    pub image: String,
    /// First byte to write (suffixes K, M, G, T).
    #[arg(long, value_parser = parse_bytes)]
    pub offset: u64,
    /// Source file, `-` for stdin (the default).
    #[arg(long, value_name = "FILE|-", default_value = "-")]
    pub input: PathBuf,
}

/// `export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Image spec.
    #[arg(value_name = "IMAGE")]
    pub image: String,
    /// Destination file (must not exist, as with `rbd export`), `-` for stdout.
    #[arg(value_name = "FILE|-")]
    pub path: PathBuf,
}

/// `import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Source file, `-` for stdin.
    #[arg(value_name = "FILE|-")]
    pub path: PathBuf,
    /// New image: [pool/[namespace/]]image.
    #[arg(value_name = "IMAGE")]
    pub image: String,
    /// Image features (repeatable or comma-separated; default: the cluster's
    /// rbd_default_features).
    #[arg(long = "image-feature", value_name = "FEATURE", value_delimiter = ',', value_parser = parse_feature)]
    pub image_feature: Vec<u64>,
    /// Object size as a power of two, 12..=25 (default 22: 4 MiB objects).
    #[arg(long, value_parser = clap::value_parser!(u8).range(12..=25))]
    pub order: Option<u8>,
}

/// `resize`.
#[derive(Debug, Args)]
pub struct ResizeArgs {
    /// Image spec.
    #[arg(value_name = "IMAGE")]
    pub image: String,
    /// New size: a bare number is MiB, as with `rbd` (suffixes B, K, M, G, T).
    #[arg(short = 's', long, value_parser = parse_size_mib)]
    pub size: u64,
    /// Permit shrinking (data past the new end is lost).
    #[arg(long)]
    pub allow_shrink: bool,
}

/// `clone-map ...`.
#[derive(Debug, Subcommand)]
pub enum CloneMapCommand {
    /// Print the map as runs of objects in one state (`start..end STATE`, end exclusive).
    Show(ImageArg),
    /// Compare the map with the objects; exit status 1 and a list if they disagree.
    Check(ImageArg),
    /// Rewrite the map from the objects.
    Rebuild(ImageArg),
}

/// `lock ...`.
#[derive(Debug, Subcommand)]
pub enum LockCommand {
    /// List the holders of the image's lock.
    #[command(visible_alias = "list")]
    Ls(ImageArg),
    /// Break a (dead) holder's lock.
    #[command(visible_alias = "remove")]
    Rm(LockRmArgs),
}

/// `lock rm`.
#[derive(Debug, Args)]
pub struct LockRmArgs {
    /// Image spec.
    #[arg(value_name = "IMAGE")]
    pub image: String,
    /// The holder (`client.4123`) as `lock ls` shows it. Stock `rbd lock rm` takes the
    /// cookie first: both orders are accepted, the locker being the `type.id` one.
    #[arg(value_name = "LOCKER")]
    pub locker: String,
    /// Its lock cookie (the `ID` column of `lock ls`, e.g. `auto 94823...`).
    #[arg(value_name = "COOKIE")]
    pub cookie: String,
}

/// `bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Image spec (a write benchmark overwrites its data).
    #[arg(value_name = "IMAGE")]
    pub image: String,
    /// What to measure.
    #[arg(long, value_enum)]
    pub io_type: IoType,
    /// Bytes per I/O (suffixes K, M, G).
    #[arg(long, value_parser = parse_bytes, default_value = "4K")]
    pub io_size: u64,
    /// Total bytes (suffixes K, M, G).
    #[arg(long, value_parser = parse_bytes, default_value = "1G")]
    pub io_total: u64,
    /// Offsets: sequential or random (aligned to --io-size).
    #[arg(long, value_enum, default_value_t = IoPattern::Seq)]
    pub io_pattern: IoPattern,
    /// I/Os in flight.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub io_threads: u32,
}

/// `bench --io-type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum IoType {
    /// Reads (through to the parent where the clone has no data).
    Read,
    /// Writes (copy-up where the clone inherits).
    Write,
}

/// `bench --io-pattern`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum IoPattern {
    /// Consecutive offsets, wrapping at the end of the image.
    Seq,
    /// Uniformly random aligned offsets.
    Rand,
}

/// `RBD_FEATURE_*` names as `rbd` prints and accepts them, in bit order.
pub const FEATURE_NAMES: &[(&str, u64)] = {
    use rbd_ext::header::features as f;
    &[
        ("layering", f::LAYERING),
        ("striping", f::STRIPINGV2),
        ("exclusive-lock", f::EXCLUSIVE_LOCK),
        ("object-map", f::OBJECT_MAP),
        ("fast-diff", f::FAST_DIFF),
        ("deep-flatten", f::DEEP_FLATTEN),
        ("journaling", f::JOURNALING),
        ("data-pool", f::DATA_POOL),
        ("operations", f::OPERATIONS),
        ("migrating", 1 << 9),
        ("non-primary", f::NON_PRIMARY),
    ]
};

/// Features a user may ask for on the command line. Journaling is left out on purpose:
/// rbd-ext cannot write journaled images, so it must not create them; `operations` and
/// `non-primary` are internal bits (rbd-ext sets them to protect parents).
const SETTABLE_FEATURES: &[&str] =
    &["layering", "striping", "exclusive-lock", "object-map", "fast-diff", "deep-flatten", "data-pool"];

/// `--image-feature NAME`.
fn parse_feature(s: &str) -> Result<u64, String> {
    let s = s.trim();
    match FEATURE_NAMES.iter().find(|(n, _)| *n == s) {
        Some((n, bit)) if SETTABLE_FEATURES.contains(n) => Ok(*bit),
        Some(_) => Err(format!("feature '{s}' cannot be set with rbd-ext (settable: {})", SETTABLE_FEATURES.join(", "))),
        None => Err(format!("unknown feature '{s}' (settable: {})", SETTABLE_FEATURES.join(", "))),
    }
}

/// A byte count: plain bytes, or with a K/M/G/T/P suffix (powers of 1024; `KiB`, `KB`, `k`
/// spell the same).
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    parse_iec(s, 1)
}

/// A size as `rbd --size` takes it: a bare number is MiB; `B` means bytes.
pub fn parse_size_mib(s: &str) -> Result<u64, String> {
    parse_iec(s, 1 << 20)
}

fn parse_iec(s: &str, bare_unit: u64) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, suffix) = t.split_at(split);
    let n: u64 = num.parse().map_err(|_| format!("'{s}' is not a size (e.g. 4096, 64K, 12M, 1G)"))?;
    let unit = match suffix.to_ascii_uppercase().as_str() {
        "" => bare_unit,
        "B" => 1,
        "K" | "KB" | "KIB" => 1 << 10,
        "M" | "MB" | "MIB" => 1 << 20,
        "G" | "GB" | "GIB" => 1 << 30,
        "T" | "TB" | "TIB" => 1 << 40,
        "P" | "PB" | "PIB" => 1 << 50,
        _ => return Err(format!("'{s}': unknown size suffix '{suffix}' (use B, K, M, G, T or P)")),
    };
    n.checked_mul(unit).ok_or_else(|| format!("'{s}' is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn sizes_follow_rbd() {
        assert_eq!(parse_bytes("4096"), Ok(4096));
        assert_eq!(parse_bytes("4K"), Ok(4096));
        assert_eq!(parse_bytes("12m"), Ok(12 << 20));
        assert_eq!(parse_bytes("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size_mib("10"), Ok(10 << 20));
        assert_eq!(parse_size_mib("1G"), Ok(1 << 30));
        assert_eq!(parse_size_mib("512B"), Ok(512));
        for bad in ["", "K", "1X", "-1", "1.5G", "99999999999999999999T"] {
            assert!(parse_bytes(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn features_by_name() {
        assert_eq!(parse_feature("object-map"), Ok(rbd_ext::header::features::OBJECT_MAP));
        assert!(parse_feature("journaling").unwrap_err().contains("cannot be set"));
        assert!(parse_feature("bogus").unwrap_err().contains("unknown feature"));
        let cli = Cli::try_parse_from(["rbd-ext", "clone-standalone", "a", "b", "--image-feature", "layering,exclusive-lock"]).unwrap();
        let Command::CloneStandalone(c) = cli.command else { panic!() };
        assert_eq!(c.image_feature, [1, 4]);
    }

    #[test]
    fn global_options_go_anywhere() {
        let cli = Cli::try_parse_from(["rbd-ext", "info", "img", "--format", "json", "-p", "other"]).unwrap();
        assert_eq!(cli.global.format, Format::Json);
        assert_eq!(cli.global.pool, "other");
    }
}
