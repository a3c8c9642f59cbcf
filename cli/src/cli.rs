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
    /// Client id, without `client.` (default: `--id` in $CEPH_ARGS, else `admin`).
    #[arg(short = 'i', long, global = true, value_name = "ID", conflicts_with = "name")]
    pub id: Option<String>,
    /// Client name (`client.ID`), an alternative to --id.
    #[arg(short = 'n', long, global = true, value_name = "TYPE.ID")]
    pub name: Option<String>,
    /// Cluster name.
    #[arg(long, global = true, value_name = "NAME")]
    pub cluster: Option<String>,
    /// Monitor address(es), overriding the configuration (`mon_host`).
    #[arg(short = 'm', long = "mon-host", global = true, value_name = "ADDR")]
    pub mon_host: Option<String>,
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
    /// Show or change how a parent of standalone clones is protected from stock tools.
    Protection(ProtectionArgs),
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
    /// Snapshots that read right, also of standalone children (stock `rbd snap create` is
    /// refused on those: it would read zeros where the child inherits data).
    #[command(subcommand)]
    Snap(SnapCommand),
    /// Inspect, verify or repair a clone's clone map.
    #[command(name = "clone-map", subcommand)]
    CloneMap(CloneMapCommand),
    /// List or break image locks, as `rbd lock`.
    #[command(subcommand)]
    Lock(LockCommand),
    /// Measure read or write performance through rbd-ext, as `rbd bench`.
    Bench(BenchArgs),
    /// S3-backed parents: publish a raw image to S3, attach an image to it, show, verify.
    #[command(subcommand)]
    S3(S3Command),
    /// Fill an S3-backed parent from S3 completely (or flatten a clone), in parallel.
    Hydrate(HydrateArgs),
    /// Back-fill counters of an S3-backed image, added up over every client.
    Stats(StatsArgs),
    /// Serve an image over NBD (QEMU, nbd-client, libnbd), in the foreground.
    #[command(subcommand)]
    Nbd(NbdCommand),
    /// Check a pool (-p): the class on every OSD serving it, the class load lists, this
    /// user's caps, and bookkeeping stock tools left behind; print the fix for each finding.
    /// Exit status 1 when something is wrong.
    Doctor(DoctorArgs),
}

/// `doctor`.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Apply the safe fixes: remove orphan clone maps, drop stale children entries, lift a
    /// protection no child holds any more.
    #[arg(long)]
    pub fix: bool,
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
    /// The parent is in another cluster: that cluster's conf file (its `mon host` is
    /// recorded in the child).
    #[arg(long, value_name = "PATH")]
    pub remote_cluster_conf: Option<String>,
    /// Keyring holding the remote client's key: the key is stored in this cluster's mon
    /// config-key store and the child records only a `config://` reference to it.
    #[arg(long, value_name = "PATH", requires = "remote_cluster_conf", conflicts_with = "remote_key_ref")]
    pub remote_keyring: Option<String>,
    /// Or an existing `config://<key>` reference to the remote client's key.
    #[arg(long, value_name = "config://KEY", requires = "remote_cluster_conf")]
    pub remote_key_ref: Option<String>,
    /// Client to connect to the remote cluster as (default client.admin).
    #[arg(long, value_name = "client.ID", requires = "remote_cluster_conf")]
    pub remote_client_name: Option<String>,
    /// A name for the remote cluster (default: the conf file's name without `.conf`).
    #[arg(long, value_name = "NAME", requires = "remote_cluster_conf")]
    pub remote_cluster_name: Option<String>,
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

/// `protection`.
#[derive(Debug, Args)]
pub struct ProtectionArgs {
    /// Parent image: [pool/[namespace/]]image.
    #[arg(value_name = "IMAGE")]
    pub image: String,
    /// Switch to this protection: `clones` (default; stock clones from its snapshots keep
    /// working) or `strict` (stock refuses every operation, stock clones too; clients that
    /// already have the image open for writing turn read-only).
    #[arg(long, value_name = "MODE", value_parser = ["clones", "strict"])]
    pub set: Option<String>,
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

/// `snap ...`.
#[derive(Debug, Subcommand)]
pub enum SnapCommand {
    /// Create a snapshot: IMAGE@SNAP. Of a standalone child, it reads the parent where the
    /// child holds no object (stock tools then read it right: export, diff, clone, flatten).
    #[command(visible_alias = "add")]
    Create(ImageArg),
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

/// `nbd ...`.
#[derive(Debug, Subcommand)]
pub enum NbdCommand {
    /// Serve IMAGE until SIGTERM or SIGINT; prints the NBD URI, logs to stderr.
    Serve(NbdServeArgs),
}

/// `nbd serve`.
#[derive(Debug, Args)]
pub struct NbdServeArgs {
    /// Image spec: [pool/[namespace/]]image.
    #[arg(value_name = "IMAGE")]
    pub image: String,
    /// Listen on this Unix socket.
    #[arg(long, value_name = "PATH", conflicts_with = "bind")]
    pub socket: Option<PathBuf>,
    /// Listen on TCP ADDR:PORT (default, without --socket: 127.0.0.1:10809, NBD's port).
    #[arg(long, value_name = "ADDR:PORT")]
    pub bind: Option<std::net::SocketAddr>,
    /// Refuse writes, and take no lock (S3-backed parents are always served read-only).
    #[arg(long)]
    pub read_only: bool,
    /// The export's name (default: the image's name).
    #[arg(long, value_name = "NAME")]
    pub export_name: Option<String>,
    /// Requests carried out at once per connection.
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub max_in_flight: usize,
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

/// `s3 ...`.
#[derive(Debug, Subcommand)]
pub enum S3Command {
    /// Upload a raw image (a file or an RBD image) to S3, with its manifest
    /// (`<key>.manifest.json`: sizes, a SHA-256 per object, zero objects).
    Publish(S3PublishArgs),
    /// Create PARENT as an S3-backed image: its objects are filled from S3 on first read.
    Attach(S3AttachArgs),
    /// Print an S3-backed image's settings (secret references, never secrets).
    Show(ImageArg),
    /// Check that an S3-backed image's settings work: secrets resolve, the object is
    /// reachable, the manifest matches, a sample GET verifies.
    Verify(ImageArg),
    /// Once every object is filled (`hydrate`) and matches the manifest: make PARENT a plain
    /// local image and its children type-1 standalone clones that stock librbd, QEMU and
    /// rbd-nbd serve. Refused, with the count of missing objects, while any is missing.
    Finalize(S3FinalizeArgs),
}

/// `s3 finalize`.
#[derive(Debug, Args)]
pub struct S3FinalizeArgs {
    /// Image spec of an S3-backed parent.
    #[arg(value_name = "PARENT")]
    pub image: String,
    /// Objects checked at once.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub parallel: u32,
}

/// Where S3 is and who we are there (publish). Each falls back to the standard AWS sources
/// (`AWS_ENDPOINT_URL`, `AWS_REGION`, `~/.aws/config`).
#[derive(Debug, Args)]
pub struct S3EndpointArgs {
    /// S3 endpoint: http(s)://host[:port] (default: $AWS_ENDPOINT_URL_S3, $AWS_ENDPOINT_URL,
    /// or the profile's endpoint_url).
    #[arg(long, value_name = "URL")]
    pub endpoint: Option<String>,
    /// SigV4 region (default: $AWS_REGION, $AWS_DEFAULT_REGION, the profile's region, or
    /// us-east-1).
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,
    /// The AWS profile of ~/.aws/credentials and ~/.aws/config to use (default: $AWS_PROFILE,
    /// or the environment's AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN,
    /// then the default profile).
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,
    /// CA certificates (PEM) to trust for an https:// endpoint with a private CA (default:
    /// $AWS_CA_BUNDLE, or the system's roots).
    #[arg(long, value_name = "FILE|config://KEY")]
    pub ca_file: Option<String>,
}

/// How publish gets its secret key: like [`S3SecretArgs`], but none of them is needed when
/// the standard AWS sources hold credentials.
#[derive(Debug, Args)]
#[group(required = false, multiple = false)]
pub struct S3PublishSecretArgs {
    /// A file holding the secret key.
    #[arg(long, value_name = "FILE", requires = "access_key")]
    pub secret_key_file: Option<PathBuf>,
    /// A reference to the secret key in the mon config-key store: `config://<key>`.
    #[arg(long, value_name = "config://KEY", requires = "access_key")]
    pub secret_key_ref: Option<String>,
    /// No credentials: unsigned requests.
    #[arg(long)]
    pub anonymous: bool,
}

/// How the secret key is given. There is deliberately no option that takes the secret itself
/// on the command line (it would land in shell history and `ps`).
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct S3SecretArgs {
    /// A file holding the secret key (attach stores it in the mon config-key store and keeps
    /// only its `config://` reference).
    #[arg(long, value_name = "FILE")]
    pub secret_key_file: Option<PathBuf>,
    /// A reference to the secret key in the mon config-key store: `config://<key>`
    /// (store it with `ceph config-key set <key> -i FILE`).
    #[arg(long, value_name = "config://KEY")]
    pub secret_key_ref: Option<String>,
    /// No credentials: unsigned requests (public-read objects).
    #[arg(long)]
    pub anonymous: bool,
}

/// `s3 publish`.
#[derive(Debug, Args)]
pub struct S3PublishArgs {
    /// A raw image file, or an image spec ([pool/[namespace/]]image) when no such file exists
    /// (or with --image).
    #[arg(value_name = "SOURCE")]
    pub source: String,
    /// Destination: s3://BUCKET/KEY.
    #[arg(value_name = "s3://BUCKET/KEY")]
    pub dest: String,
    /// SOURCE is an image spec, even if a file of that name exists.
    #[arg(long)]
    pub image: bool,
    /// Endpoint and region.
    #[command(flatten)]
    pub endpoint: S3EndpointArgs,
    /// Access key id, with --secret-key-file or --secret-key-ref (default: the standard AWS
    /// sources, see --profile).
    #[arg(long, value_name = "ID", conflicts_with = "anonymous")]
    pub access_key: Option<String>,
    /// Secret key source (default: the standard AWS sources, see --profile).
    #[command(flatten)]
    pub secret: S3PublishSecretArgs,
    /// Object size of the manifest, i.e. of the RBD image to attach (suffixes K, M);
    /// an image SOURCE uses its own.
    #[arg(long, value_parser = parse_bytes, default_value = "4M")]
    pub object_size: u64,
    /// Create the bucket first (succeeds if we already own it).
    #[arg(long)]
    pub create_bucket: bool,
}

/// `s3 attach`.
#[derive(Debug, Args)]
pub struct S3AttachArgs {
    /// The S3-backed image to create: [pool/[namespace/]]image.
    #[arg(value_name = "PARENT")]
    pub parent: String,
    /// S3 endpoint: http(s)://host[:port].
    #[arg(long, value_name = "URL")]
    pub endpoint: String,
    /// Bucket.
    #[arg(long, value_name = "BUCKET")]
    pub bucket: String,
    /// Where the data is.
    #[command(flatten)]
    pub object: S3ObjectArgs,
    /// SigV4 region.
    #[arg(long, value_name = "REGION", default_value = "us-east-1")]
    pub region: String,
    /// Access key id.
    #[arg(long, value_name = "ID", conflicts_with = "access_key_ref", required_unless_present_any = ["access_key_ref", "anonymous"])]
    pub access_key: Option<String>,
    /// The access key id as a reference: `config://<key>`.
    #[arg(long, value_name = "config://KEY")]
    pub access_key_ref: Option<String>,
    /// Secret key source.
    #[command(flatten)]
    pub secret: S3SecretArgs,
    /// With --secret-key-file: replace a different secret already stored for this bucket and
    /// access key (a key rotation; every image using it then signs with the new one).
    /// Without it, such an attach fails and changes nothing.
    #[arg(long, requires = "secret_key_file")]
    pub replace_secret: bool,
    /// CA certificates (PEM) to trust for an https:// endpoint with a private CA, instead of
    /// the system's: a path (it must exist on every client host) or `config://KEY` (stored
    /// once with `ceph config-key set KEY -i ca.pem`). Stored with the S3 settings, so
    /// children read with it.
    #[arg(long, value_name = "FILE|config://KEY")]
    pub ca_file: Option<String>,
    /// Image size when no manifest was published (default: the S3 object's size); a bare
    /// number is MiB (suffixes B, K, M, G, T).
    #[arg(long, value_parser = parse_size_mib)]
    pub size: Option<u64>,
    /// Object size as a power of two, 12..=25, when no manifest was published (default 22).
    #[arg(long, value_parser = clap::value_parser!(u8).range(12..=25))]
    pub order: Option<u8>,
    /// Per-request timeout in milliseconds (default 30000).
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout_ms: Option<u64>,
    /// Retries after a failed attempt (timeouts, connection failures, 5xx; default 3).
    #[arg(long, value_name = "N")]
    pub retries: Option<u32>,
    /// How long a fill claim holds before another client may take over, in milliseconds
    /// (default 30000, at most 600000).
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u32).range(1..=600_000))]
    pub claim_ttl_ms: Option<u32>,
}

/// `s3 attach`: one raw image, or one S3 object per RADOS object.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct S3ObjectArgs {
    /// The raw image's key (ranged GETs; a manifest beside it is used when published).
    #[arg(long, value_name = "KEY")]
    pub key: Option<String>,
    /// Key prefix of one S3 object per RADOS object (`<prefix><object number as %016x>`).
    #[arg(long, value_name = "PREFIX")]
    pub prefix: Option<String>,
}

/// `hydrate`.
#[derive(Debug, Args)]
pub struct HydrateArgs {
    /// Image spec: an S3-backed parent (filled from S3) or a clone (flattened).
    #[arg(value_name = "IMAGE")]
    pub image: String,
    /// Objects fetched at once.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub parallel: u32,
}

/// `stats`.
#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Image spec of an S3-backed parent.
    #[arg(value_name = "IMAGE")]
    pub image: String,
    /// Clear the saved counters after printing them.
    #[arg(long)]
    pub reset: bool,
}

/// `--image-feature NAME`: the library's names (`rbd`'s).
fn parse_feature(s: &str) -> Result<u64, String> {
    rbd_ext::header::features::parse(s).map_err(|e| e.what().to_string())
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
    fn s3_options() {
        let attach = ["rbd-ext", "s3", "attach", "p", "--endpoint", "http://h:1", "--bucket", "b", "--key", "k"];
        let with = |more: &[&str]| Cli::try_parse_from(attach.iter().chain(more).copied());
        assert!(with(&["--access-key", "A", "--secret-key-ref", "config://x"]).is_ok());
        assert!(with(&["--anonymous"]).is_ok());
        // One secret source, exactly; no way to pass the secret itself.
        assert!(with(&["--access-key", "A"]).is_err());
        assert!(with(&["--access-key", "A", "--secret-key-ref", "config://x", "--secret-key-file", "f"]).is_err());
        let e = with(&["--access-key", "A", "--secret-key", "wJalrXUtnFEMI"]).unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::UnknownArgument);
        assert!(!e.to_string().contains("wJalrXUtnFEMI"), "{e}");
        // An access key is needed unless anonymous; --key or --prefix, not both.
        assert!(with(&["--secret-key-ref", "config://x"]).is_err());
        assert!(with(&["--anonymous", "--prefix", "p/"]).is_err());
        let Command::S3(S3Command::Attach(a)) = with(&["--access-key-ref", "config://a", "--secret-key-file", "f", "--claim-ttl-ms", "1500"]).unwrap().command
        else {
            panic!()
        };
        assert_eq!((a.access_key_ref.as_deref(), a.claim_ttl_ms), (Some("config://a"), Some(1500)));
        let p =
            Cli::try_parse_from(["rbd-ext", "s3", "publish", "f.raw", "s3://b/k", "--endpoint", "http://h:1", "--anonymous", "--object-size", "1M"]).unwrap();
        let Command::S3(S3Command::Publish(p)) = p.command else { panic!() };
        assert_eq!(p.object_size, 1 << 20);
    }

    #[test]
    fn global_options_go_anywhere() {
        let cli = Cli::try_parse_from(["rbd-ext", "info", "img", "--format", "json", "-p", "other"]).unwrap();
        assert_eq!(cli.global.format, Format::Json);
        assert_eq!(cli.global.pool, "other");
    }
}
