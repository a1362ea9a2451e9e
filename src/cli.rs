//! The command line: every flag, its environment variable and its help text.
//!
//! Only declarations live here (clap derive); `commands` does the work.

use std::path::PathBuf;

use clap::builder::BoolishValueParser;
use clap::{Args, Parser, Subcommand};

/// The boolean settings read from environment variables: each takes
/// 1/0, true/false, yes/no, on/off.
pub const BOOL_VARS: &[&str] = &["VERBATIM_NO_PROGRESS", "VERBATIM_S3_PATH_STYLE"];

/// Checks the boolean variables before clap reads them, so that a bad value
/// is an error naming the variable rather than the flag.
pub fn check_bool_vars() -> Result<(), String> {
    for var in BOOL_VARS {
        let Some(value) = std::env::var_os(var) else {
            continue;
        };
        let ok = value.to_str().is_some_and(|v| {
            matches!(
                v.to_ascii_lowercase().as_str(),
                "1" | "0" | "true" | "false" | "yes" | "no" | "on" | "off" | "y" | "n" | "t" | "f"
            )
        });
        if !ok {
            return Err(format!(
                "environment variable {var}={}: expected 1/0, true/false, yes/no or on/off",
                crate::output::escape(&value.to_string_lossy())
            ));
        }
    }
    Ok(())
}

const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  failure (I/O, store unreachable, …)
  2  usage or configuration error
  3  a promotion gate refused the manifest
  4  lost a race: an environment pointer moved concurrently
  5  integrity failure: an object is missing or its bytes do not match, or the
     history or pointer of an environment or of the policy is inconsistent
  6  the canary check failed and the environment was rolled back
  130, 143, 129  SIGINT, SIGTERM or SIGHUP stopped a canary check (128 + the signal);
     the environment was rolled back";

/// Build once, publish immutably, promote the same manifest through every environment.
///
/// verbatim packs the app into a reproducible, content-hashed artifact, names it
/// in one canonical manifest, stores both where nothing is ever overwritten, and
/// moves environment pointers (dev → preprod → prod) to that very manifest.
#[derive(Debug, Parser)]
#[command(name = "verbatim", version, after_help = EXIT_CODES, max_term_width = 100)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
#[command(next_help_heading = "Global options")]
pub struct Global {
    /// Config file [default: ./verbatim.toml]; relative paths in it are relative to it.
    #[arg(long, global = true, env = "VERBATIM_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// Store URL: a path, file:///abs/path or s3://bucket/prefix [default: store.url, else ./.verbatim/store].
    #[arg(long, global = true, env = "VERBATIM_STORE", value_name = "URL")]
    pub store: Option<String>,

    /// S3 endpoint for self-hosted servers [default: store.endpoint_url, AWS_ENDPOINT_URL].
    #[arg(help_heading = "S3 options", long, global = true, value_name = "URL")]
    pub endpoint_url: Option<String>,

    /// S3 region [default: store.region, the AWS chain, else us-east-1].
    #[arg(help_heading = "S3 options", long, global = true)]
    pub region: Option<String>,

    /// Address buckets as http://host/bucket (MinIO, Ceph, s3s …) [default: store.path_style].
    #[arg(
        help_heading = "S3 options",
        long,
        global = true,
        env = "VERBATIM_S3_PATH_STYLE",
        value_parser = BoolishValueParser::new()
    )]
    pub path_style: bool,

    /// Allow an S3 server that ignores conditional writes, with racy HEAD-then-PUT.
    /// Immutable objects could be overwritten and promotions lost: avoid.
    #[arg(help_heading = "S3 options", long, global = true)]
    pub unsafe_no_conditional_writes: bool,

    /// Store requests in flight at once (uploads, verify checks) [default: store.concurrency, else 16].
    #[arg(long, global = true, env = "VERBATIM_CONCURRENCY", value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub concurrency: Option<u16>,

    /// Seconds one S3 request may take, retries included; a silent endpoint fails after it [default: store.timeout, else 60].
    #[arg(help_heading = "S3 options", long, global = true, env = "VERBATIM_TIMEOUT", value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub timeout: Option<u64>,

    /// Print one JSON document on stdout and nothing else there.
    #[arg(long, global = true)]
    pub json: bool,

    /// Print only results and errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// Print more about what is being done.
    #[arg(short, long, global = true)]
    pub verbose: bool,

    /// Never draw progress bars (they are only drawn on a terminal, never in CI).
    #[arg(long, global = true, env = "VERBATIM_NO_PROGRESS", value_parser = BoolishValueParser::new())]
    pub no_progress: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a commented verbatim.toml in the current directory.
    Init(InitArgs),
    /// Pack the artifact and write the manifest into .verbatim/build (no network).
    Build(BuildArgs),
    /// Build (or reuse the build), upload what the store lacks, store the manifest; prints its id.
    #[command(
        after_help = "Examples:\n  verbatim publish                      # build and publish; prints sha256:…\n  verbatim publish --env dev            # … then promote it to dev\n  verbatim publish --prebuilt --store s3://releases/web --endpoint-url http://127.0.0.1:8014 --path-style"
    )]
    Publish(PublishArgs),
    /// Check that every object a manifest names exists and hashes right.
    Verify(VerifyArgs),
    /// Point an environment at a manifest, after its gates pass.
    #[command(
        after_help = "Examples:\n  verbatim promote sha256:3f3a --to dev\n  verbatim promote dev --to preprod                 # what dev runs, verbatim\n  verbatim promote preprod --to prod --check-cmd 'curl -fsS https://example.com/healthz'\n  verbatim promote sha256:3f3a --to prod --force --reason 'hotfix INC-42'"
    )]
    Promote(PromoteArgs),
    /// Point an environment back at a manifest it ran before.
    #[command(
        after_help = "Examples:\n  verbatim rollback prod                 # to what prod ran before (never to what it rolled back from)\n  verbatim rollback prod --to 3          # to what event 3 of `verbatim history prod` set"
    )]
    Rollback(RollbackArgs),
    /// Show which manifest each environment runs.
    Status(StatusArgs),
    /// List an environment's promotions and rollbacks, newest first.
    History(HistoryArgs),
    /// Download, verify and unpack what an environment runs (run this on the host).
    #[command(
        after_help = "Example:\n  dir=$(verbatim fetch prod --into /srv/app --store s3://releases/web) && ln -sfn \"$dir\" /srv/app/current"
    )]
    Fetch(FetchArgs),
    /// Show what changed between two manifests.
    Diff(DiffArgs),
    /// Write the manifest's asset names for another tool (Django's staticfiles.json).
    Export(ExportArgs),
    /// Show or change the policy the store holds: the environment order.
    #[command(
        after_help = "The first promotion stores verbatim.toml's environments.order (or the default\ndev, preprod, prod) in the store as policy.json; from then on the store's order\nrules for everyone, and a verbatim.toml declaring another is an error (exit 2).\n\nExamples:\n  verbatim policy show\n  verbatim policy set --order dev,qa,preprod,prod --reason 'QA sign-off before preprod'\n  verbatim policy history"
    )]
    Policy(PolicyArgs),
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Replace an existing verbatim.toml.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args, Clone)]
pub struct BuildOpts {
    /// App directory to pack [default: app.dir from the config].
    #[arg(long, env = "VERBATIM_APP_DIR", value_name = "DIR")]
    pub app_dir: Option<PathBuf>,

    /// Source revision to record [default: `git rev-parse HEAD` when in a git checkout].
    #[arg(long, env = "VERBATIM_REVISION")]
    pub revision: Option<String>,

    /// Seconds since the epoch recorded as every entry's mtime and in the manifest [default: 0].
    #[arg(long, env = "SOURCE_DATE_EPOCH", value_name = "SECONDS")]
    pub source_date_epoch: Option<u64>,

    /// Compression threads [default: number of CPUs]. Never changes the bytes.
    #[arg(long, env = "VERBATIM_JOBS", value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub jobs: Option<u16>,
}

#[derive(Debug, Args)]
pub struct BuildArgs {
    #[command(flatten)]
    pub opts: BuildOpts,

    /// Build twice and fail if the two artifacts differ by a single byte.
    #[arg(long)]
    pub check: bool,
}

#[derive(Debug, Args)]
pub struct PublishArgs {
    #[command(flatten)]
    pub opts: BuildOpts,

    /// Publish the output of an earlier `verbatim build` instead of building again.
    #[arg(long)]
    pub prebuilt: bool,

    /// Then promote the manifest to this environment (normally the first, e.g. dev).
    #[arg(long, env = "VERBATIM_ENV", value_name = "ENV")]
    pub env: Option<String>,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// A manifest: `sha256:<hex>`, a unique hex prefix, a manifest file, or an environment name.
    pub manifest: String,

    /// Download and re-hash every object, instead of trusting the sha256 the
    /// store verified on upload (the local store always re-hashes).
    #[arg(long)]
    pub deep: bool,
}

#[derive(Debug, Args)]
pub struct PromoteArgs {
    /// The manifest: `sha256:<hex>`, a unique hex prefix, a manifest file, or the
    /// environment whose live manifest to take (`verbatim promote preprod --to prod`).
    pub manifest: String,

    /// The environment to point at it.
    #[arg(long, value_name = "ENV")]
    pub to: String,

    /// Promote even though a gate refuses; needs --reason, and is recorded.
    #[arg(long, requires = "reason")]
    pub force: bool,

    /// Why: recorded in the history.
    #[arg(long)]
    pub reason: Option<String>,

    /// After the pointer moves, run this shell command (it sees VERBATIM_ENV,
    /// VERBATIM_MANIFEST and VERBATIM_PREVIOUS_MANIFEST) in a process group of
    /// its own; if it fails or times out, roll back automatically and exit 6.
    /// SIGINT, SIGTERM or SIGHUP during the check end it and roll back too
    /// (exit 128 + the signal). The promote event records the check and its
    /// deadline before it starts: if verbatim is killed, `status` shows the
    /// environment unchecked and further promotes there are refused until
    /// it is rolled back.
    #[arg(long, value_name = "CMD")]
    pub check_cmd: Option<String>,

    /// Seconds from the move until the check must have passed; then its
    /// whole process group is ended (SIGTERM, 3 s, SIGKILL).
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 300,
        requires = "check_cmd",
        value_parser = clap::value_parser!(u64).range(1..=604_800)
    )]
    pub check_timeout: u64,
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// The environment to roll back.
    pub env: String,

    /// Where to: a manifest, or an event number from `verbatim history`, even
    /// one rolled back from [default: the newest manifest live before the
    /// current one that this environment has not rolled back from].
    #[arg(long, value_name = "MANIFEST|N")]
    pub to: Option<String>,

    /// Roll back to a manifest that was never live there; needs --reason.
    #[arg(long, requires = "reason")]
    pub force: bool,

    /// Why: recorded in the history.
    #[arg(long)]
    pub reason: Option<String>,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Only this environment [default: all, in configured order].
    pub env: Option<String>,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    pub env: String,

    /// Show at most this many events.
    #[arg(long, short = 'n')]
    pub limit: Option<usize>,
}

#[derive(Debug, Args)]
pub struct PolicyArgs {
    #[command(subcommand)]
    pub command: PolicyCommand,
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Show the policy in effect (the environment order) and who set it, when and why.
    Show,
    /// Change the environment order for everyone; recorded like a promotion.
    Set(PolicySetArgs),
    /// List the policy's changes, newest first.
    History(PolicyHistoryArgs),
}

#[derive(Debug, Args)]
pub struct PolicySetArgs {
    /// The environments in promotion order, first to last, comma-separated.
    #[arg(long, value_delimiter = ',', required = true, value_name = "ENV,ENV,…")]
    pub order: Vec<String>,

    /// Why: recorded in the policy's history.
    #[arg(long)]
    pub reason: String,
}

#[derive(Debug, Args)]
pub struct PolicyHistoryArgs {
    /// Show at most this many events.
    #[arg(long, short = 'n')]
    pub limit: Option<usize>,
}

#[derive(Debug, Args)]
pub struct FetchArgs {
    /// An environment (its live manifest) or a manifest.
    #[arg(value_name = "ENV|MANIFEST")]
    pub target: String,

    /// Deploy root: the release lands in DIR/releases/<manifest-hex>/.
    #[arg(long, value_name = "DIR")]
    pub into: PathBuf,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The older manifest (or environment).
    pub a: String,
    /// The newer manifest (or environment).
    pub b: String,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Output format.
    #[arg(long, value_enum)]
    pub format: ExportFormat,

    /// File to write [default: stdout].
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,

    /// A stored manifest (`sha256:<hex>`, a unique hex prefix) or a manifest file [default: the build directory's].
    #[arg(long)]
    pub manifest: Option<String>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ExportFormat {
    /// staticfiles.json for Django's ManifestStaticFilesStorage.
    Django,
}
