//! How a rollout goes, as people write it and the policy keeps it: the
//! strategy, wave sizes, and an environment's default rollout. Pure, and
//! imports nothing of the crate but text, so the policy and the rollout
//! rooms both build on it.

use serde::{Deserialize, Serialize};

/// How the target reaches the hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// In waves, each baked before the next starts.
    Waves,
    /// Every host stages the target; one switch flips them all.
    BlueGreen,
}

/// The size of a wave, counted over the hosts known when the rollout
/// started: the first `n` hosts, or the first `p` percent (rounded up).
/// Waves are cumulative: `1,25%,100%` is one host, then a quarter of
/// them, then all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Size {
    /// That many hosts.
    Count(u64),
    /// That share of the hosts, 1 to 100.
    Percent(u8),
}

impl std::fmt::Display for Size {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Size::Count(n) => write!(f, "{n}"),
            Size::Percent(p) => write!(f, "{p}%"),
        }
    }
}

impl std::str::FromStr for Size {
    type Err = String;

    fn from_str(s: &str) -> Result<Size, String> {
        let bad = || {
            format!(
                "wave `{}` is neither a host count (`2`) nor a percentage (`25%`)",
                crate::text::escape(s)
            )
        };
        if let Some(p) = s.strip_suffix('%') {
            let p: u8 = p.parse().map_err(|_| bad())?;
            if p == 0 || p > 100 {
                return Err(format!("wave `{s}`: a percentage is 1% to 100%"));
            }
            Ok(Size::Percent(p))
        } else {
            match s.parse() {
                Ok(0) => Err(format!("wave `{s}`: a wave has at least one host")),
                Ok(n) => Ok(Size::Count(n)),
                Err(_) => Err(bad()),
            }
        }
    }
}

impl Serialize for Size {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Size, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

impl Size {
    /// How many of `n` hosts this wave covers (at least one when there
    /// are any).
    pub fn of(self, n: usize) -> usize {
        match self {
            Size::Count(c) => usize::try_from(c).unwrap_or(usize::MAX).min(n),
            Size::Percent(p) => (n * usize::from(p)).div_ceil(100).max(n.min(1)),
        }
    }
}

/// Parses `--waves`: sizes separated by commas, the last one `100%`, so
/// every host ends on the target.
pub fn parse_waves(s: &str) -> Result<Vec<Size>, String> {
    let waves = s
        .split(',')
        .map(|w| w.trim().parse())
        .collect::<Result<Vec<Size>, String>>()?;
    if waves.last() != Some(&Size::Percent(100)) {
        return Err(format!(
            "--waves `{}` must end with `100%`, so every host ends on the release: `{},100%`",
            crate::text::escape(s),
            crate::text::escape(s)
        ));
    }
    Ok(waves)
}

/// An environment's default rollout, kept in the policy (`policy set
/// --rollout ENV=SPEC`): what `promote` does without `--waves`,
/// `--strategy` or `--at-once`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RolloutDefault {
    /// Waves or blue/green.
    pub strategy: Strategy,
    /// The waves (blue/green: `100%`).
    pub waves: Vec<Size>,
    /// How long each wave bakes.
    pub bake_secs: u64,
}

impl RolloutDefault {
    /// As `policy show` says it: `waves 1,25%,100%, bake 300s`.
    pub fn describe(&self) -> String {
        let waves: Vec<String> = self.waves.iter().map(Size::to_string).collect();
        match self.strategy {
            Strategy::Waves => format!("waves {}, bake {}s", waves.join(","), self.bake_secs),
            Strategy::BlueGreen => format!("blue-green, bake {}s", self.bake_secs),
        }
    }
}

/// Parses `--rollout`'s SPEC: `1,25%,100%` or `blue-green`, optionally
/// followed by `@` and the bake in seconds or with a unit (`@5m`); empty:
/// none (all at once).
pub fn parse_default(spec: &str) -> Result<Option<RolloutDefault>, String> {
    let spec = spec.trim();
    if spec.is_empty() {
        return Ok(None);
    }
    let (how, bake) = spec.split_once('@').unwrap_or((spec, "1m"));
    let bake_secs = match bake.trim() {
        "0" | "0s" => 0,
        b => crate::clock::parse_duration(b)
            .map_err(|e| format!("the bake after `@`: {e}"))?
            .as_secs(),
    };
    let (strategy, waves) = match how.trim() {
        "blue-green" => (Strategy::BlueGreen, vec![Size::Percent(100)]),
        waves => (Strategy::Waves, parse_waves(waves)?),
    };
    Ok(Some(RolloutDefault {
        strategy,
        waves,
        bake_secs,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_default_rollout_is_waves_or_blue_green_with_a_bake() {
        let d = parse_default("1,50%,100%@5m").unwrap().unwrap();
        assert_eq!((d.strategy, d.bake_secs), (Strategy::Waves, 300));
        assert_eq!(d.describe(), "waves 1,50%,100%, bake 300s");
        let bg = parse_default("blue-green").unwrap().unwrap();
        assert_eq!((bg.strategy, bg.bake_secs), (Strategy::BlueGreen, 60));
        assert_eq!(parse_default("").unwrap(), None);
        assert_eq!(parse_default("1,100%@0").unwrap().unwrap().bake_secs, 0);
        for bad in ["1,50%", "green", "1,100%@soon"] {
            assert!(parse_default(bad).is_err(), "{bad}");
        }
    }
}
