//! clap declarations of rollouts: `promote`'s rollout flags and the
//! `rollout` command.

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};

pub const ROLLOUT_HELP: &str = "\
A rollout's every step is an event in the environment's history (create-only,
the pointer compare-and-swapped): two controllers never both take a step, and
`resume` goes on from any machine after the promoter was killed. While it is in
flight the pointer stays on the stable manifest; hosts not in a started wave
stay on it (or return to it); `completed` makes the target the environment's.

Examples:
  verbatim promote sha256:5d8f --to prod --waves 1,25%,100% --bake 5m --check-cmd ./check-500s.sh
  verbatim promote sha256:5d8f --to prod --strategy blue-green
  verbatim rollout status prod
  verbatim rollout pause prod --reason 'watching latency'
  verbatim rollout resume prod
  verbatim rollout abort prod --reason 'errors up'";

/// How `promote` rolls a manifest out to the environment's hosts.
#[derive(Debug, Args)]
#[command(next_help_heading = "Rolling out (instead of moving every host at once)")]
pub struct RolloutFlags {
    /// Roll out in waves of hosts, each a count or a percentage of the
    /// hosts that reported to ENV, cumulative, the last 100%: `1,25%,100%`.
    /// Each wave's hosts must report the manifest active, then it bakes
    /// (--bake) and --check-cmd runs: 0 goes on, 75 (inconclusive) pauses
    /// (exit 8; `verbatim rollout resume`), anything else aborts: every
    /// host back on the stable manifest, exit 6.
    #[arg(long, value_name = "LIST", value_parser = parse_waves)]
    pub waves: Option<Waves>,

    /// `waves` (with --waves), or `blue-green`: every host stages the
    /// manifest first, then one switch flips them all within about a second.
    #[arg(long, value_enum, value_name = "STRATEGY")]
    pub strategy: Option<StrategyArg>,

    /// How long each wave runs before its check: 30s, 5m, 0 [default: 1m,
    /// or the policy's].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration_or_zero)]
    pub bake: Option<std::time::Duration>,

    /// The first wave is exactly these hosts: web7,web8.
    #[arg(long, value_name = "HOST,…", value_delimiter = ',')]
    pub canary_hosts: Vec<String>,

    /// Blue/green: switch once this many hosts staged [default: every host].
    #[arg(long, value_name = "N")]
    pub min_staged: Option<u64>,

    /// Move every host at once, even where the policy sets a rollout
    /// (`policy set --rollout`).
    #[arg(long, conflicts_with_all = ["waves", "strategy"])]
    pub at_once: bool,

    /// How long a wave (or the staging, or the release phase) may take
    /// before the rollout aborts: 90s, 10m.
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = verbatim::clock::parse_duration)]
    pub wave_timeout: std::time::Duration,
}

/// `--strategy`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum StrategyArg {
    /// In waves (`--waves`).
    Waves,
    /// Stage everywhere, then switch everywhere.
    BlueGreen,
}

#[derive(Debug, Args)]
pub struct RolloutArgs {
    #[command(subcommand)]
    pub command: RolloutCommand,
}

#[derive(Debug, Subcommand)]
pub enum RolloutCommand {
    /// Where the newest rollout of ENV stands: `prod  rolling 5d8f… over 1a2b…  wave 2/3 (3/12 hosts)`.
    Status(RolloutEnv),
    /// Stop the rollout where it is (hosts stay); its controller exits 8.
    Pause(RolloutChange),
    /// Become the rollout's controller (from any machine) and drive it to its end.
    Resume(RolloutChange),
    /// End the rollout: every host back on the stable manifest.
    Abort(RolloutChange),
}

#[derive(Debug, Args)]
pub struct RolloutEnv {
    /// The environment.
    pub env: String,
}

#[derive(Debug, Args)]
pub struct RolloutChange {
    /// The environment.
    pub env: String,

    /// Why: recorded in the step's event.
    #[arg(long)]
    pub reason: Option<String>,

    /// Sign the step's event with this OpenSSH key (hosts with
    /// --require-event-signer need it).
    #[arg(long, env = "VERBATIM_EVENT_SIGNING_KEY", value_name = "FILE")]
    pub sign_key: Option<PathBuf>,
}

/// `--waves`, parsed.
#[derive(Debug, Clone)]
pub struct Waves(pub Vec<verbatim::environments::rollout::Size>);

fn parse_waves(s: &str) -> Result<Waves, String> {
    verbatim::environments::rollout::parse_waves(s).map(Waves)
}

fn parse_duration_or_zero(s: &str) -> Result<std::time::Duration, String> {
    match s.trim() {
        "0" | "0s" | "0m" => Ok(std::time::Duration::ZERO),
        _ => verbatim::clock::parse_duration(s),
    }
}
