//! The command line: every flag, its environment variable and its help text.
//!
//! Only declarations live here (clap derive); `commands` does the work.
//! `host` holds the flags of what runs on a host, `values` the parsers of
//! flag values clap cannot parse alone.

// The doc comments below are the `--help` text, written for a terminal
// (`<command>`, `DIR/releases/<manifest-hex>/`), not HTML.
#![allow(rustdoc::invalid_html_tags)]

use std::path::PathBuf;

use clap::builder::BoolishValueParser;
use clap::{Args, Parser, Subcommand};
use verbatim::clock::parse_duration;

mod envconfig;
mod host;
mod rollout;
mod values;

pub use envconfig::{ConfigArgs, ConfigCommand, CONFIG_HELP};
use host::DEPLOY_HELP;
pub use host::{AgentArgs, DeployArgs, DeployTo, FetchArgs, HostArgs, LogFormat, TrustArgs};
pub use rollout::{RolloutArgs, RolloutCommand, RolloutFlags, StrategyArg, ROLLOUT_HELP};
pub use values::WaitHosts;
use values::{parse_check_timeout, parse_require, parse_timeout, parse_wait_hosts};

/// The boolean settings read from environment variables: each takes
/// 1/0, true/false, yes/no, on/off.
pub const BOOL_VARS: &[&str] = &[
    "VERBATIM_NO_PROGRESS",
    "VERBATIM_S3_PATH_STYLE",
    "VERBATIM_REQUIRE_CLEAN",
];

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
                verbatim::text::escape(&value.to_string_lossy())
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
  6  the canary check failed and the environment was rolled back; or the hosts did
     not confirm a `rollback --wait-hosts` (it stands); or, on a host, a deploy
     hook or check failed and `current` was left or flipped back
  7  another deploy or agent holds the host's lock (deploy --no-wait, a second agent)
  8  a rollout paused (an inconclusive check, or `rollout pause`): `rollout resume` goes on
  130, 143, 129  SIGINT, SIGTERM or SIGHUP stopped a canary check or a deploy (128 + the
     signal); the environment was rolled back, or the host left on its previous release";

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

    /// How long one S3 request may take, retries included (30s, 2m; 1s to 1d); a silent endpoint fails after it [default: store.timeout, else 60s].
    #[arg(help_heading = "S3 options", long, global = true, env = "VERBATIM_TIMEOUT", value_name = "DURATION", value_parser = parse_timeout)]
    pub timeout: Option<u64>,

    /// OpenSSH allowed_signers file of the keys that sign the store's policy (`policy set --sign-key`): a policy in effect that none of them signed is refused (exit 5).
    #[arg(
        long,
        global = true,
        env = "VERBATIM_POLICY_SIGNERS",
        value_name = "FILE"
    )]
    pub policy_signers: Option<PathBuf>,

    /// Print only JSON on stdout: one document (agent: one per line).
    #[arg(long, global = true)]
    pub json: bool,

    /// Print only results and errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// Print more about what is being done.
    #[arg(short, long, global = true)]
    pub verbose: bool,

    /// Colour `error:` and `warning:`: auto (on a terminal, unless NO_COLOR is set), always or never.
    #[arg(long, global = true, value_name = "WHEN", default_value = "auto")]
    pub color: clap::ColorChoice,

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
        after_help = "Examples:\n  verbatim rollback prod                 # to what prod ran before (never to what it rolled back from)\n  verbatim rollback prod --to 3          # to what event 3 of `verbatim history prod` set\n  verbatim rollback prod --wait-hosts 3  # …and wait until 3 hosts run it (exit 6 if not; it stands)"
    )]
    Rollback(RollbackArgs),
    /// Show which manifest each environment runs.
    Status(StatusArgs),
    /// List an environment's promotions and rollbacks, newest first.
    History(HistoryArgs),
    /// Write one static HTML page of environments, rollouts, hosts and history.
    #[command(
        after_help = "Examples:\n  verbatim dashboard --out public/   # public/index.html, works from file://\n  verbatim dashboard --publish       # dashboard/index.html in the store, for its CDN\n\nWith `[dashboard] publish = true` in verbatim.toml, every promote, rollback and rollout step rewrites dashboard/index.html in the store."
    )]
    Dashboard(DashboardArgs),
    /// Download, verify and unpack what an environment runs, without activating it (`deploy` does both).
    #[command(
        after_help = "Example:\n  verbatim fetch prod --into /srv/app --store s3://releases/web   # prints /srv/app/releases/<hex>"
    )]
    Fetch(FetchArgs),
    /// Make this host run a release: fetch, verify, hooks, atomic flip of DIR/current, check, report.
    #[command(after_help = DEPLOY_HELP)]
    Deploy(DeployArgs),
    /// Keep this host on an environment: deploy whenever its pointer moves (run it as a service).
    #[command(
        after_help = "Runs until SIGTERM or SIGINT (then exits 0, after finishing or abandoning the\ncurrent step). Every --interval (±10 %) it HEADs the environment's pointer; when\nit changed (a promotion or a rollback) it deploys it, as `verbatim deploy ENV`\nwould. It also HEADs the config pointer (verbatim config): a change is written\nto DIR/shared/verbatim-config.json and .env, and the reload hook runs in the\ncurrent release, without a flip. Store errors are retried with backoff; a\nrelease whose hooks failed is not retried until the pointer moves again. One\nagent per root (exit 7 otherwise).\n\nWith --json it prints one JSON document per line (JSON Lines), one per attempt:\nwhat `deploy --json` prints, with \"time\" and \"error\" (null unless it failed).\n\nExample:\n  verbatim agent prod --root /srv/app --store s3://releases/web --interval 15s"
    )]
    Agent(AgentArgs),
    /// Show what changed between two manifests.
    Diff(DiffArgs),
    /// Write the manifest's asset names for another tool (Django's staticfiles.json).
    Export(ExportArgs),
    /// Create a signing key (an ed25519 OpenSSH key pair).
    Key(KeyArgs),
    /// Sign a stored manifest (a QA approval), or add a signature made with ssh-keygen.
    #[command(after_help = SIGN_HELP)]
    Sign(SignArgs),
    /// Re-sign that an environment's live move is still its newest, for hosts with --max-age (run on a schedule).
    #[command(after_help = TIMESTAMP_HELP)]
    Timestamp(TimestampArgs),
    /// Print a shell completion script: `verbatim completions bash > /etc/bash_completion.d/verbatim`.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), or write one per command into --out DIR.
    Man {
        /// Write verbatim.1 and verbatim-<command>.1 (verbatim-key-generate.1, …) into this directory.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Print the command reference as Markdown instead: every command, its
        /// flags, their variables and defaults (the book's reference/commands.md).
        #[arg(long, conflicts_with = "out")]
        markdown: bool,
    },
    /// Show or change the policy the store holds: the environment order.
    #[command(
        after_help = "The first promotion stores verbatim.toml's environments.order (or the default\ndev, preprod, prod) in the store as policy.json; from then on the store's order\nrules for everyone, and a verbatim.toml declaring another is an error (exit 2).\n\nExamples:\n  verbatim policy show\n  verbatim policy set --order dev,qa,preprod,prod --reason 'QA sign-off before preprod'\n  verbatim policy history"
    )]
    Policy(PolicyArgs),
    /// Follow, pause, resume or abort a rollout (`promote --waves`, `--strategy blue-green`).
    #[command(after_help = crate::cli::ROLLOUT_HELP)]
    Rollout(crate::cli::RolloutArgs),
    /// List the hosts each environment knows, live or stale; forget one that is gone.
    #[command(
        after_help = "A host is live while its agent rewrites its report (every 3 --interval); one not\nseen for 10 intervals (at least 10 s) is stale, and a cleanly stopped agent says\n`stopped`. Only live hosts count in `status`, --wait-hosts and rollout waves.\n\nExamples:\n  verbatim hosts list --env prod\n  verbatim hosts forget old-web3 --env prod --reason 'decommissioned'"
    )]
    Hosts(HostsArgs),
    /// Set, show, list or roll back an environment's config (no rebuild): its pages and hosts read it.
    #[command(after_help = crate::cli::CONFIG_HELP)]
    Config(crate::cli::ConfigArgs),
}

const SIGN_HELP: &str = "\
A signature is an OpenSSH signature (SSHSIG) over the manifest's stored bytes,
namespace verbatim-manifest@v1, stored under signatures/sha256/<hex>/. Hosts
refuse manifests without the signatures they require (deploy --allowed-signers
FILE --require PRINCIPAL).

Examples:
  verbatim key generate --out ci-signing-key
  verbatim sign sha256:3f3a --key qa-key                     # QA approves this release
  ssh-keygen -Y sign -n verbatim-manifest@v1 -f ~/.ssh/id_ed25519 manifest.json
  verbatim sign sha256:3f3a --signature manifest.json.sig    # a signature made elsewhere";

#[derive(Debug, Args)]
pub struct KeyArgs {
    #[command(subcommand)]
    pub command: KeyCommand,
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Write an ed25519 key pair in OpenSSH format: FILE (private, 0600) and FILE.pub.
    Generate {
        /// Where to write the private key; the public key goes to FILE.pub.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// The key's comment [default: verbatim].
        #[arg(long)]
        comment: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct SignArgs {
    /// The manifest: `sha256:<hex>`, a unique hex prefix, a manifest file, or an environment.
    pub manifest: String,

    /// Sign with this unencrypted OpenSSH private key.
    #[arg(
        long,
        value_name = "FILE",
        env = "VERBATIM_SIGNING_KEY",
        required_unless_present = "signature",
        conflicts_with = "signature"
    )]
    pub key: Option<PathBuf>,

    /// Add this armored signature (from `ssh-keygen -Y sign -n verbatim-manifest@v1`), once it verifies.
    #[arg(long, value_name = "FILE")]
    pub signature: Option<PathBuf>,
}

const TIMESTAMP_HELP: &str = "\
Writes envs/ENV/timestamp.json: a statement, signed in namespace
verbatim-timestamp@v1, that the live event is the newest, valid for
--valid-for. `promote` and `rollback` with --sign-key write one too. A host
with --max-age (and --require-event-signer) moves only while the newest
signed statement is that recent, so a pointer an attacker or a stuck replica
froze stops it (exit 5, report `stale`). Run this more often than the hosts'
--max-age, e.g. hourly in CI for --max-age 1d.

Example:
  verbatim timestamp prod --sign-key ci.key --valid-for 2d";

#[derive(Debug, Args)]
pub struct TimestampArgs {
    /// The environment.
    #[arg(value_name = "ENV")]
    pub env: String,

    /// Sign with this unencrypted OpenSSH private key (a principal hosts require with --require-event-signer).
    #[arg(long, value_name = "FILE", env = "VERBATIM_EVENT_SIGNING_KEY")]
    pub sign_key: PathBuf,

    /// How long the statement vouches for the move: 12h, 7d.
    #[arg(long, value_name = "DURATION", default_value = "7d", value_parser = parse_duration)]
    pub valid_for: std::time::Duration,
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

    /// Source revision to record [default: `git rev-parse HEAD`, else GITHUB_SHA, CI_COMMIT_SHA, BUILDKITE_COMMIT].
    #[arg(long, env = "VERBATIM_REVISION")]
    pub revision: Option<String>,

    /// Branch to record [default: GITHUB_HEAD_REF/GITHUB_REF_NAME, CI_COMMIT_REF_NAME, BUILDKITE_BRANCH, else git's branch].
    #[arg(long, env = "VERBATIM_BRANCH")]
    pub branch: Option<String>,

    /// URL of the CI run to record [default: from GitHub Actions, GitLab CI (CI_JOB_URL) or Buildkite variables].
    #[arg(long, env = "VERBATIM_CI_URL", value_name = "URL")]
    pub ci_url: Option<String>,

    /// Seconds since the epoch recorded as every entry's mtime and in the manifest [default: 0].
    #[arg(long, env = "SOURCE_DATE_EPOCH", value_name = "SECONDS")]
    pub source_date_epoch: Option<u64>,

    /// Compression threads [default: number of CPUs]. Never changes the bytes.
    #[arg(long, env = "VERBATIM_JOBS", value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub jobs: Option<u16>,

    /// Pack everything again, even when nothing changed since the last build
    /// (by default an unchanged tree reuses .verbatim/build: every file's
    /// size, mtime, ctime, inode and mode, the config and the tool must match).
    #[arg(long)]
    pub no_cache: bool,
}

#[derive(Debug, Args)]
pub struct BuildArgs {
    #[command(flatten)]
    pub opts: BuildOpts,

    /// Build twice and fail if the two artifacts differ by a single byte.
    #[arg(long, conflicts_with = "list")]
    pub check: bool,

    /// List every entry that would be packed (mode, size, path) and write
    /// nothing; -v adds what is excluded and why.
    #[arg(long)]
    pub list: bool,
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

    /// Sign the manifest with this OpenSSH private key (see `verbatim sign`).
    #[arg(long, env = "VERBATIM_SIGNING_KEY", value_name = "FILE")]
    pub sign_key: Option<PathBuf>,

    /// Build, then say what the store lacks (-v: each key); upload, sign and promote nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Refuse (exit 2, before anything is uploaded) unless the project's git
    /// work tree is clean: no uncommitted changes, no untracked files git
    /// does not ignore. A build records `dirty` in its provenance either way.
    #[arg(long, env = "VERBATIM_REQUIRE_CLEAN", value_parser = BoolishValueParser::new())]
    pub require_clean: bool,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// A manifest: `sha256:<hex>`, a unique hex prefix, a manifest file, or an environment name.
    pub manifest: String,

    /// Download and re-hash every object, instead of trusting the sha256 the
    /// store verified on upload (the local store always re-hashes).
    #[arg(long)]
    pub deep: bool,

    /// Show which principals of this allowed_signers file each signature satisfies.
    #[arg(long, env = "VERBATIM_ALLOWED_SIGNERS", value_name = "FILE")]
    pub allowed_signers: Option<PathBuf>,
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

    /// How long from the move until the check must have passed (90s, 5m,
    /// 1h; 1s to 7d); then its whole process group is ended (SIGTERM, 3 s,
    /// SIGKILL).
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "5m",
        requires = "check_cmd",
        value_parser = parse_check_timeout
    )]
    pub check_timeout: u64,

    /// After the pointer moves, wait until N hosts, or exactly the hosts
    /// listed (web1,web2: no other host counts; end a lone all-digit id
    /// with a comma), report the manifest active (`verbatim deploy` or
    /// `agent` on each); if one reports it failed, or --wait-timeout passes
    /// first, roll back automatically and exit 6. Only a report that names
    /// this very move (its event and the sha256 of the event's bytes) at
    /// envs/ENV/hosts/HOST.json counts; any other is ignored with a
    /// warning. Recorded in the event like --check-cmd.
    #[arg(long, value_name = "N|HOST,…", conflicts_with = "check_cmd", value_parser = parse_wait_hosts)]
    pub wait_hosts: Option<WaitHosts>,

    /// With --wait-hosts, count only reports their hosts signed (`deploy`
    /// or `agent` with --report-key): the signature at
    /// envs/ENV/hosts/HOST.sig must verify over the report with a key the
    /// store's policy lists for the principal HOST (`policy set
    /// --allowed-signers FILE`, lines like `web1 ssh-ed25519 AAAA…`).
    /// Unsigned or wrongly signed reports are ignored with a warning.
    /// Recorded in the event's check.
    #[arg(long, requires = "wait_hosts")]
    pub signed_reports: bool,

    /// Check the manifest and the gates, say what would move, write nothing.
    #[arg(long, conflicts_with_all = ["check_cmd", "wait_hosts"])]
    pub dry_run: bool,

    /// Sign the promote event (and an auto-rollback) with this OpenSSH key;
    /// `history` shows who signed each event.
    #[arg(long, env = "VERBATIM_EVENT_SIGNING_KEY", value_name = "FILE")]
    pub sign_key: Option<PathBuf>,

    /// How long --wait-hosts waits: 90s, 10m, 1h.
    #[arg(long, value_name = "DURATION", default_value = "10m", requires = "wait_hosts", value_parser = parse_duration)]
    pub wait_timeout: std::time::Duration,

    #[command(flatten)]
    pub rollout: crate::cli::RolloutFlags,
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

    /// Check the target and the gates, say what would move, write nothing.
    #[arg(long, conflicts_with = "wait_hosts")]
    pub dry_run: bool,

    /// After the pointer moves, wait until N hosts, or exactly the hosts
    /// listed (web1,web2), report the rollback active, as `promote
    /// --wait-hosts` does; if one reports it failed, or --wait-timeout
    /// passes first, exit 6. The rollback stands either way (it is not
    /// undone) and the wait is not recorded in the event.
    #[arg(long, value_name = "N|HOST,…", value_parser = parse_wait_hosts)]
    pub wait_hosts: Option<WaitHosts>,

    /// With --wait-hosts, count only reports their hosts signed (see
    /// `promote --signed-reports`).
    #[arg(long, requires = "wait_hosts")]
    pub signed_reports: bool,

    /// How long --wait-hosts waits: 90s, 10m, 1h.
    #[arg(long, value_name = "DURATION", default_value = "10m", requires = "wait_hosts", value_parser = parse_duration)]
    pub wait_timeout: std::time::Duration,

    /// Sign the rollback event with this OpenSSH key.
    #[arg(long, env = "VERBATIM_EVENT_SIGNING_KEY", value_name = "FILE")]
    pub sign_key: Option<PathBuf>,

    /// Why: recorded in the history.
    #[arg(long)]
    pub reason: Option<String>,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Only this environment [default: all, in configured order].
    pub env: Option<String>,

    /// List every host that reports to the environment: what it runs, its state, how long ago.
    #[arg(long)]
    pub hosts: bool,
}

#[derive(Debug, Args)]
pub struct DashboardArgs {
    /// Write index.html (and the diff pages it links to) into this directory.
    #[arg(long, value_name = "DIR", required_unless_present = "publish")]
    pub out: Option<std::path::PathBuf>,

    /// Write it to the store instead, at dashboard/index.html (short-cached).
    #[arg(long, conflicts_with = "out")]
    pub publish: bool,

    /// Only this environment (repeat for more) [default: all, in the store's order].
    #[arg(long = "env", value_name = "ENV")]
    pub envs: Vec<String>,

    /// Show at most this many events of each history.
    #[arg(long, value_name = "N", default_value_t = verbatim::dashboard::model::DEFAULT_HISTORY)]
    pub history: usize,

    /// A host whose last report is older than this is shown stale.
    #[arg(long, value_name = "DURATION", default_value = "15m", value_parser = values::parse_stale_after)]
    pub stale_after: u64,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    pub env: String,

    /// Show at most this many events.
    #[arg(long, short = 'n')]
    pub limit: Option<usize>,

    /// Check the hash chain and the event signatures and print a verdict
    /// instead of the events (exit 5, naming the first event at fault, if
    /// any was changed, removed or inserted, an event signature does not
    /// verify, or an event after a signed one is unsigned; with
    /// --allowed-signers, also if a key the file does not list signed one).
    #[arg(long)]
    pub verify: bool,

    /// Show which principals of this allowed_signers file signed each event;
    /// with --verify, every key that signed an event must have one (in
    /// namespace verbatim-event@v1, now).
    #[arg(long, env = "VERBATIM_ALLOWED_SIGNERS", value_name = "FILE")]
    pub allowed_signers: Option<PathBuf>,
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
    /// The environments in promotion order, first to last, comma-separated [default: as it is].
    #[arg(long, value_delimiter = ',', value_name = "ENV,ENV,…", required_unless_present_any = ["require", "sign_moves", "rollout", "allowed_signers", "sign_key"])]
    pub order: Vec<String>,

    /// ENV=PRINCIPAL[,PRINCIPAL…]: signatures a manifest needs before it may be
    /// promoted to ENV (`ENV=` requires none); repeat for more environments.
    #[arg(long, value_name = "ENV=PRINCIPALS", value_parser = parse_require)]
    pub require: Vec<(String, Vec<String>)>,

    /// ENV=PRINCIPAL[,PRINCIPAL…]: every move of ENV (promote, rollback)
    /// must be signed by these (--sign-key), as hosts with
    /// --require-event-signer expect (`ENV=` requires none); repeat for more.
    #[arg(long, value_name = "ENV=PRINCIPALS", value_parser = parse_require)]
    pub sign_moves: Vec<(String, Vec<String>)>,

    /// ENV=SPEC: how `promote` rolls out to ENV when its flags do not say:
    /// waves (`1,25%,100%`) or `blue-green`, then `@` and the bake
    /// (`prod=1,25%,100%@5m`; default 1m); `ENV=` moves it all at once
    /// again. `promote --at-once` overrides it for one move.
    #[arg(long, value_name = "ENV=SPEC", value_parser = values::parse_rollout_default)]
    pub rollout: Vec<(
        String,
        Option<verbatim::environments::waves::RolloutDefault>,
    )>,

    /// The OpenSSH allowed_signers file naming the keys of those principals;
    /// its text is stored in the policy.
    #[arg(long, value_name = "FILE")]
    pub allowed_signers: Option<PathBuf>,

    /// Why: recorded in the policy's history.
    #[arg(long)]
    pub reason: String,

    /// Change it only if the policy in effect is still the one of this
    /// event (`policy show` prints it; 0: none yet), else exit 4: a
    /// scripted or reviewed change never lands on top of another.
    #[arg(long, value_name = "SEQ")]
    pub expect_seq: Option<u64>,

    /// Sign the policy event with this OpenSSH private key (namespace
    /// verbatim-policy@v1), for promoters with --policy-signers; when the
    /// policy is unchanged, sign the event in effect.
    #[arg(long, value_name = "FILE", env = "VERBATIM_POLICY_SIGNING_KEY")]
    pub sign_key: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct PolicyHistoryArgs {
    /// Show at most this many events.
    #[arg(long, short = 'n')]
    pub limit: Option<usize>,

    /// Check the hash chain and the signatures, and print a one-line
    /// verdict instead of the events (exit 5, naming the first event at
    /// fault): once a policy event is signed, every later one must be, and
    /// with --policy-signers every signature must be by a key it lists.
    #[arg(long)]
    pub verify: bool,
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

#[derive(Debug, Args)]
pub struct HostsArgs {
    #[command(subcommand)]
    pub command: HostsCommand,
}

#[derive(Debug, Subcommand)]
pub enum HostsCommand {
    /// Every host each environment knows, with its release, state and liveness.
    List {
        /// Only this environment [default: every one the policy lists].
        #[arg(long, value_name = "ENV")]
        env: Option<String>,
    },
    /// Stop counting a host that is gone (recorded, with who and why; it comes back if it reports again).
    Forget {
        /// The host's id.
        id: String,
        /// The environment whose hosts it leaves.
        #[arg(long, value_name = "ENV")]
        env: String,
        /// Why: recorded.
        #[arg(long)]
        reason: Option<String>,
    },
}
