//! Flag values clap cannot parse alone: `ENV=PRINCIPALS`, `NAME=VALUE`,
//! what `--wait-hosts` waits for, durations given in whole seconds.

use verbatim::clock::parse_duration;
use verbatim::text::human_duration;

/// `--timeout`: a duration as every flag takes it
/// ([`parse_duration`]: `30s`, `2m`, `60`), 1 s to a day, in seconds.
pub fn parse_timeout(s: &str) -> Result<u64, String> {
    seconds_within(s, 86_400)
}

/// `dashboard --stale-after`: a duration (`15m`), 1 s to 30 days, in seconds.
pub fn parse_stale_after(s: &str) -> Result<u64, String> {
    seconds_within(s, 30 * 86_400)
}

/// `--check-timeout`: a duration (`5m`, `300`), 1 s to a week, in seconds.
pub fn parse_check_timeout(s: &str) -> Result<u64, String> {
    seconds_within(s, 604_800)
}

/// `s` as a duration of at least a second and at most `max` seconds, in
/// whole seconds (a fraction counts as a second).
fn seconds_within(s: &str, max: u64) -> Result<u64, String> {
    let d = parse_duration(s)?;
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    if secs > max {
        return Err(format!("`{s}` is more than {}", human_duration(max)));
    }
    Ok(secs)
}

/// `ENV=PRINCIPAL[,PRINCIPAL…]` (`policy set --require`, `--sign-moves`);
/// `ENV=` requires none.
pub fn parse_require(s: &str) -> Result<(String, Vec<String>), String> {
    let (env, principals) = s
        .split_once('=')
        .ok_or_else(|| format!("`{s}` is not ENV=PRINCIPAL[,PRINCIPAL…]"))?;
    Ok((
        env.to_owned(),
        principals
            .split(',')
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect(),
    ))
}

/// `NAME=VALUE` (`--hook-env`), NAME made of letters, digits and `_`.
pub fn parse_var(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((name, value))
            if !name.is_empty()
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !name.starts_with(|c: char| c.is_ascii_digit()) =>
        {
            Ok((name.to_owned(), value.to_owned()))
        }
        _ => Err(format!(
            "`{s}` is not NAME=VALUE with NAME made of letters, digits and `_`"
        )),
    }
}

/// What `--wait-hosts` waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WaitHosts {
    /// Any N hosts.
    Count(u64),
    /// Exactly these hosts, each once.
    Ids(Vec<String>),
}

/// The most hosts `--wait-hosts` waits for.
const MAX_WAIT_HOSTS: u64 = 100_000;

/// `--wait-hosts`: a number (1 to 100000) is a count; anything else is a
/// comma-separated list of host ids (a trailing comma allowed, so a lone
/// all-digit id is `123,`).
pub fn parse_wait_hosts(s: &str) -> Result<WaitHosts, String> {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return match s.parse::<u64>() {
            Ok(n) if (1..=MAX_WAIT_HOSTS).contains(&n) => Ok(WaitHosts::Count(n)),
            _ => Err(format!(
                "`{s}`: wait for 1 to {MAX_WAIT_HOSTS} hosts, or list them by id"
            )),
        };
    }
    let list = s.strip_suffix(',').unwrap_or(s);
    let mut ids: Vec<String> = Vec::new();
    for id in list.split(',') {
        verbatim::environments::reports::check_host_id(id)?;
        if ids.iter().any(|seen| seen == id) {
            return Err(format!("host `{id}` is listed twice"));
        }
        ids.push(id.to_owned());
    }
    if ids.len() as u64 > MAX_WAIT_HOSTS {
        return Err(format!("more than {MAX_WAIT_HOSTS} hosts listed"));
    }
    Ok(WaitHosts::Ids(ids))
}

/// `policy set --rollout ENV=SPEC`.
pub fn parse_rollout_default(
    s: &str,
) -> Result<
    (
        String,
        Option<verbatim::environments::waves::RolloutDefault>,
    ),
    String,
> {
    let (env, spec) = s.split_once('=').ok_or_else(|| {
        format!("`{s}` is not ENV=SPEC (prod=1,25%,100%@5m, prod=blue-green, prod=)")
    })?;
    Ok((
        env.to_owned(),
        verbatim::environments::waves::parse_default(spec)?,
    ))
}
