//! clap declarations of `verbatim config`: an environment's config, set
//! without a rebuild.

use std::path::PathBuf;

use clap::{Args, Subcommand};

pub const CONFIG_HELP: &str = "\
Each environment has a config of its own: keys (environment-variable names) to
one-line values, changed without a rebuild. Every change is an event in a
hash-chained log of its own (envs/<env>/config/events/), signed where the
policy asks moves of the environment to be (policy set --sign-moves).

Pages get it as one block right after <head>, written into site/<env>/ at every
move and every config change:
  <script type=\"application/json\" id=\"verbatim-config\">{\"API_URL\":\"…\"}</script>
read with JSON.parse(document.getElementById('verbatim-config').textContent).
Hosts running `verbatim agent` get it as shared/verbatim-config.json and
shared/verbatim-config.env, and run the [deploy.hooks] reload hook.

Examples:
  verbatim config set prod API_URL=https://api.example.com NEW_CHECKOUT=on --reason 'INC-7'
  verbatim config set prod --unset NEW_CHECKOUT
  verbatim config show prod
  verbatim config history prod
  verbatim config rollback prod            # to what the event before the newest left
  verbatim config rollback prod --to 3     # to what config event 3 left";

#[derive(Debug, Args)]
pub struct ConfigArgs {
    #[command(subcommand)]
    pub command: ConfigCommand,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Set (or --unset) keys of an environment's config; its live pages are written again.
    Set(ConfigSetArgs),
    /// Show the config in effect.
    Show(ConfigEnvArgs),
    /// List the config's changes, newest first (the hash chain checked; exit 5 if broken).
    History(ConfigHistoryArgs),
    /// Go back to the config an earlier event left, recorded as a new event.
    Rollback(ConfigRollbackArgs),
}

#[derive(Debug, Args)]
pub struct ConfigSetArgs {
    /// The environment.
    #[arg(value_name = "ENV")]
    pub env: String,

    /// KEY=VALUE pairs: KEY is an environment variable's name (letters,
    /// digits, `_`, not starting with a digit), VALUE one line of at most
    /// 4096 bytes.
    #[arg(value_name = "KEY=VALUE", value_parser = parse_pair)]
    pub pairs: Vec<(String, String)>,

    /// Remove this key; repeat for more.
    #[arg(long, value_name = "KEY")]
    pub unset: Vec<String>,

    #[command(flatten)]
    pub change: ChangeFlags,
}

/// What every recorded change takes.
#[derive(Debug, Args)]
pub struct ChangeFlags {
    /// Why: recorded in the config's history.
    #[arg(long)]
    pub reason: Option<String>,

    /// Sign the config event with this OpenSSH key (namespace
    /// verbatim-event@v1), as moves are signed; required when the policy
    /// asks moves of ENV to be signed.
    #[arg(long, env = "VERBATIM_EVENT_SIGNING_KEY", value_name = "FILE")]
    pub sign_key: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ConfigEnvArgs {
    /// The environment.
    #[arg(value_name = "ENV")]
    pub env: String,
}

#[derive(Debug, Args)]
pub struct ConfigHistoryArgs {
    /// The environment.
    #[arg(value_name = "ENV")]
    pub env: String,

    /// Show at most this many events.
    #[arg(long, short = 'n')]
    pub limit: Option<usize>,
}

#[derive(Debug, Args)]
pub struct ConfigRollbackArgs {
    /// The environment.
    #[arg(value_name = "ENV")]
    pub env: String,

    /// The config event whose config to go back to [default: the one
    /// before the newest].
    #[arg(long, value_name = "N")]
    pub to: Option<u64>,

    #[command(flatten)]
    pub change: ChangeFlags,
}

/// `KEY=VALUE`, split at the first `=`; the key is checked by the library.
fn parse_pair(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) => Ok((k.to_owned(), v.to_owned())),
        None => Err(format!(
            "`{}` is not KEY=VALUE (to remove a key: --unset KEY)",
            verbatim::text::escape(s)
        )),
    }
}
