//! The flags of what runs on a host: `fetch`, `deploy`, `agent`, and what
//! a host trusts.

use std::path::PathBuf;

use clap::Args;

use super::values::parse_var;
use verbatim::clock::parse_duration;

/// What a host trusts: who must have signed a manifest before it runs it.
/// Its flags are under "Signatures" in `--help`, each by its own
/// `help_heading` (a `next_help_heading` would carry on to the flags of
/// the command after them).
#[derive(Debug, Args, Clone)]
pub struct TrustArgs {
    /// OpenSSH allowed_signers file: principals and their keys. With it, a
    /// manifest needs a valid signature by a key it lists (exit 5 otherwise).
    #[arg(
        help_heading = "Signatures",
        long,
        env = "VERBATIM_ALLOWED_SIGNERS",
        value_name = "FILE"
    )]
    pub allowed_signers: Option<PathBuf>,

    /// A principal whose signature every manifest needs; repeat for more.
    #[arg(
        help_heading = "Signatures",
        long,
        env = "VERBATIM_REQUIRE",
        value_name = "PRINCIPAL",
        value_delimiter = ','
    )]
    pub require: Vec<String>,

    /// A principal that must have signed the environment event a host acts
    /// on (`promote`/`rollback --sign-key`); repeat for more. A pointer or
    /// event written without the key moves no host (exit 5).
    #[arg(
        help_heading = "Signatures",
        long,
        env = "VERBATIM_REQUIRE_EVENT_SIGNER",
        value_name = "PRINCIPAL",
        value_delimiter = ','
    )]
    pub require_event_signer: Vec<String>,

    /// Refuse to move (exit 5, report `stale`) when the newest signed
    /// statement about the environment (its live event, or the timestamp
    /// `verbatim timestamp` re-signs) is older than this: 1h, 2d. Needs
    /// --require-event-signer.
    #[arg(help_heading = "Signatures", long, env = "VERBATIM_MAX_AGE", value_name = "DURATION", value_parser = parse_duration)]
    pub max_age: Option<std::time::Duration>,
}

#[derive(Debug, Args)]
pub struct FetchArgs {
    /// An environment (its live manifest) or a manifest.
    #[arg(value_name = "ENV|MANIFEST")]
    pub target: String,

    /// Deploy root: the release lands in DIR/releases/<manifest-hex>/.
    #[arg(long, value_name = "DIR")]
    pub into: PathBuf,

    #[command(flatten)]
    pub trust: TrustArgs,
}

pub(super) const DEPLOY_HELP: &str = "\
Layout of DIR:
  releases/<manifest-hex>/   one verified, unpacked release each
  current -> releases/<hex>  the live release, flipped by renaming a new link over it
  shared/                    paths that survive releases ([deploy] shared), linked into each
  .verbatim/                 host lock, history (history.jsonl), file records

Steps: lock DIR (waits; --no-wait exits 7), clean what a crash left, fetch and
verify the release (or re-check the one on disk, re-fetched if modified), link
shared paths, run pre_activate (on failure `current` is untouched), flip
`current`, run post_activate and check (on failure flip back, run post_activate
again, exit 6), keep the newest [deploy] keep releases, report to the store.
Hooks run in the release directory with VERBATIM_ENV, VERBATIM_MANIFEST,
VERBATIM_PREVIOUS_MANIFEST, VERBATIM_RELEASE_DIR and VERBATIM_ROOT set.

Examples:
  verbatim deploy prod --root /srv/app --store s3://releases/web
  verbatim deploy sha256:3f3a --root /srv/app
  verbatim deploy --to previous --root /srv/app      # flip back on this host only";

#[derive(Debug, Args)]
pub struct HostArgs {
    /// Deploy root: releases/, current, shared/ and .verbatim/ live here.
    #[arg(long, env = "VERBATIM_ROOT", value_name = "DIR")]
    pub root: PathBuf,

    /// This host's name in its reports to the store [default: the hostname].
    #[arg(long, env = "VERBATIM_HOST_ID", value_name = "ID")]
    pub host_id: Option<String>,

    /// A variable for the hooks, NAME=VALUE; repeat for more. Hooks also
    /// inherit verbatim's own environment.
    #[arg(long = "hook-env", value_name = "NAME=VALUE", value_parser = parse_var)]
    pub hook_env: Vec<(String, String)>,

    /// Sign this host's reports with this unencrypted OpenSSH private key:
    /// each report's signature goes to envs/ENV/hosts/HOST.sig, and
    /// `promote --wait-hosts … --signed-reports` counts the report only if
    /// the policy's allowed signers list this key for the host id (a line
    /// like `web1 ssh-ed25519 AAAA…`).
    #[arg(long, env = "VERBATIM_REPORT_KEY", value_name = "FILE")]
    pub report_key: Option<PathBuf>,

    /// This host may run a rollout's release phase (`[deploy.hooks]
    /// release`, e.g. migrations): its reports say so, and a rollout lets
    /// such hosts claim it (exactly one runs it). Without any, the first
    /// wave's first host runs it.
    #[arg(long, env = "VERBATIM_RELEASE_RUNNER")]
    pub release_runner: bool,
}

#[derive(Debug, Args)]
pub struct DeployArgs {
    /// An environment (its live manifest; the host reports to it) or a manifest.
    #[arg(value_name = "ENV|MANIFEST", required_unless_present = "to")]
    pub target: Option<String>,

    /// Flip back to the release that was current before, on this host only.
    #[arg(long, value_enum, conflicts_with = "target")]
    pub to: Option<DeployTo>,

    #[command(flatten)]
    pub host: HostArgs,

    #[command(flatten)]
    pub trust: TrustArgs,

    /// Exit 7 at once when another deploy or agent holds the host lock, instead of waiting.
    #[arg(long)]
    pub no_wait: bool,

    /// Say what would be fetched, run, flipped and removed; change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum DeployTo {
    /// The release `current` named before the current one.
    Previous,
}

#[derive(Debug, Args)]
pub struct AgentArgs {
    /// The environment to follow.
    pub env: String,

    #[command(flatten)]
    pub host: HostArgs,

    #[command(flatten)]
    pub trust: TrustArgs,

    /// How often to look at the pointer, ±10 %: 30s, 2m, 500ms.
    #[arg(long, env = "VERBATIM_INTERVAL", value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub interval: std::time::Duration,

    /// Log as a service does: one line per step, each with an RFC 3339
    /// time, progress and results alike on stdout; `text` or `json` (one
    /// object per line).
    #[arg(long, value_enum, value_name = "FORMAT", env = "VERBATIM_LOG_FORMAT")]
    pub log_format: Option<LogFormat>,

    /// Print a systemd unit that runs this very agent (`Type=notify`: it
    /// says when it is ready and keeps a watchdog fed; restarted on
    /// failure; `--log-format text`) and exit: `verbatim agent prod --root
    /// /srv/app --store s3://… --print-systemd-unit >
    /// /etc/systemd/system/verbatim-agent.service`.
    #[arg(long)]
    pub print_systemd_unit: bool,
}

/// `agent --log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// `TIME LEVEL message`.
    Text,
    /// `{"time": …, "level": …, "message": …}`, a result's fields inline.
    Json,
}
