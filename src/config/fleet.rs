//! `[dashboard]` and `[notify]`: how the team sees the fleet. Read by the
//! commands that move pointers (`promote`, `rollback`, `rollout`,
//! `publish --env`) and by `dashboard`.

use std::path::Path;

use serde::Deserialize;

use super::ConfigError;

/// A webhook's time, all retries included, when `notify.timeout` is unset.
pub const DEFAULT_NOTIFY_TIMEOUT_SECS: u64 = 5;

/// `[dashboard]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DashboardSection {
    #[serde(default)]
    publish: bool,
}

/// `[notify]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NotifySection {
    #[serde(default)]
    webhooks: Vec<String>,
    timeout: Option<u64>,
}

/// `[dashboard]`, checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dashboard {
    /// `dashboard.publish`: every move rewrites `dashboard/index.html` in
    /// the store.
    pub publish: bool,
}

/// `[notify]`, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notify {
    /// `notify.webhooks`: `http://` or `https://` URLs, each POSTed one JSON
    /// document per event.
    pub webhooks: Vec<String>,
    /// `notify.timeout`: seconds one event may take to reach one webhook,
    /// retries included (default [`DEFAULT_NOTIFY_TIMEOUT_SECS`]).
    pub timeout_secs: u64,
}

impl Default for Notify {
    fn default() -> Notify {
        Notify {
            webhooks: vec![],
            timeout_secs: DEFAULT_NOTIFY_TIMEOUT_SECS,
        }
    }
}

pub(super) fn check_dashboard(d: DashboardSection) -> Dashboard {
    Dashboard { publish: d.publish }
}

/// `[notify]` checked: every webhook an `http://` or `https://` URL with a
/// host, the timeout 1 to 60 seconds.
pub(super) fn check_notify(n: NotifySection, path: &Path) -> Result<Notify, ConfigError> {
    for (i, url) in n.webhooks.iter().enumerate() {
        if let Err(why) = check_webhook(url) {
            return Err(ConfigError::new(format!(
                "`notify.webhooks[{i}]` in {} is {url:?}: {why}",
                path.display()
            )));
        }
    }
    let timeout_secs = n.timeout.unwrap_or(DEFAULT_NOTIFY_TIMEOUT_SECS);
    if !(1..=60).contains(&timeout_secs) {
        return Err(ConfigError::new(format!(
            "`notify.timeout` in {} is {timeout_secs}: give 1 to 60 (seconds a webhook may take, retries included)",
            path.display()
        )));
    }
    Ok(Notify {
        webhooks: n.webhooks,
        timeout_secs,
    })
}

/// Why `url` is not a webhook URL verbatim can POST to.
pub fn check_webhook(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or("give an http:// or https:// URL, like \"https://hooks.slack.com/services/…\"")?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if host.is_empty() || host.contains('@') {
        return Err("give a URL with a host (and no user:password@)".into());
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("a URL has no spaces or control characters".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhooks_are_http_urls_with_a_host() {
        assert!(check_webhook("https://hooks.example.com/x").is_ok());
        assert!(check_webhook("http://127.0.0.1:9/").is_ok());
        for bad in ["ftp://x", "https://", "https://u:p@x/", "http://x/a b", "x"] {
            assert!(check_webhook(bad).is_err(), "{bad}");
        }
    }
}
