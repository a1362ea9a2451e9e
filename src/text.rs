//! Text for people: values from outside made safe to print on one line,
//! messages of several lines, sizes in bytes.
//!
//! Text from outside (reasons, actors, paths, keys, server messages) may
//! hold control characters. Every line verbatim prints passes through
//! [`escape`], so a value can neither start a line of its own (and forge a
//! `history` entry) nor drive the terminal. A message the tool itself
//! composes of several lines is a [`Lines`], printed one escaped line at a
//! time. The ground floor: it imports nothing of the crate.

use std::fmt;

/// Text from outside, made safe to print on one line of a terminal: see
/// [`Escaped`].
pub fn escape(text: &str) -> Escaped<'_> {
    Escaped(text)
}

/// Displays a string with every character that could move the cursor, end
/// the line, drive the terminal or reorder what is shown escaped, Rust-style:
/// `\n`, `\r`, `\t`, `\x1b` (C0 controls and DEL), `\u{9b}` (C1 controls),
/// `\u{202e}` (bidirectional overrides and isolates, line and paragraph
/// separators). Everything else, backslashes included, is shown as it is.
/// Escaping escaped text changes nothing.
#[derive(Clone, Copy)]
pub struct Escaped<'a>(pub &'a str);

/// Whether `c` is shown escaped by [`Escaped`].
pub fn needs_escape(c: char) -> bool {
    c.is_control() // C0, DEL and C1
        || matches!(
            c,
            '\u{061c}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
        )
}

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        while let Some(i) = rest.find(needs_escape) {
            f.write_str(&rest[..i])?;
            let c = rest[i..].chars().next().unwrap_or_default();
            match c {
                '\n' => f.write_str("\\n")?,
                '\r' => f.write_str("\\r")?,
                '\t' => f.write_str("\\t")?,
                c if u32::from(c) < 0x80 => write!(f, "\\x{:02x}", u32::from(c))?,
                c => write!(f, "\\u{{{:x}}}", u32::from(c))?,
            }
            rest = &rest[i + c.len_utf8()..];
        }
        f.write_str(rest)
    }
}

impl fmt::Debug for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{self}\"")
    }
}

/// An error message the tool composes of several lines: a head, then one
/// line per item (every problem found in the assets, say). It prints as
/// separate lines, each escaped on its own, so a newline inside an item
/// shows as `\n` and never starts a line.
#[derive(Debug)]
pub struct Lines {
    /// The first line: what failed.
    pub head: String,
    /// One line each below the head, indented by two spaces.
    pub items: Vec<String>,
}

impl fmt::Display for Lines {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", escape(&self.head))?;
        for item in &self.items {
            write!(f, "\n  {}", escape(item))?;
        }
        Ok(())
    }
}

impl std::error::Error for Lines {}

/// `12.30 MiB`, `512 B`: binary prefixes, two decimals (as indicatif's
/// `HumanBytes`, which the progress bars use).
pub fn human_bytes(n: u64) -> String {
    const PREFIXES: [&str; 6] = ["Ki", "Mi", "Gi", "Ti", "Pi", "Ei"];
    let mut amount = n as f64;
    let mut prefix = None;
    for p in PREFIXES {
        if amount < 1024.0 {
            break;
        }
        amount /= 1024.0;
        prefix = Some(p);
    }
    match prefix {
        None => format!("{n} B"),
        Some(p) => format!("{amount:.2} {p}B"),
    }
}

/// `3d 4h`, `5m 2s`, `40s`: the two largest units of `secs`.
pub fn human_duration(secs: u64) -> String {
    let units = [(86_400, "d"), (3_600, "h"), (60, "m"), (1, "s")];
    let parts: Vec<String> = units
        .iter()
        .scan(secs, |left, &(size, unit)| {
            let n = *left / size;
            *left %= size;
            Some((n, unit))
        })
        .skip_while(|(n, _)| *n == 0)
        .take(2)
        .filter(|(n, _)| *n > 0)
        .map(|(n, unit)| format!("{n}{unit}"))
        .collect();
    if parts.is_empty() {
        "0s".into()
    } else {
        parts.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bars (indicatif) and the notes (this) print sizes alike.
    #[cfg(feature = "cli")]
    #[test]
    fn sizes_read_as_the_progress_bars_print_them() {
        for n in [
            0,
            1,
            1023,
            1024,
            1536,
            (1 << 20) - 1,
            1 << 20,
            12_897_485,
            1_000_000_000_000,
            u64::MAX,
        ] {
            assert_eq!(human_bytes(n), indicatif::HumanBytes(n).to_string(), "{n}");
        }
    }

    #[test]
    fn durations_in_their_two_largest_units() {
        for (secs, shown) in [
            (0, "0s"),
            (40, "40s"),
            (302, "5m 2s"),
            (3600, "1h"),
            (273_600, "3d 4h"),
        ] {
            assert_eq!(human_duration(secs), shown);
        }
    }

    #[test]
    fn escapes_what_could_forge_a_line_or_drive_a_terminal() {
        let check = |raw: &str, shown: &str| assert_eq!(escape(raw).to_string(), shown);
        check(
            "plain text, ünïcode ✓ and a \\ backslash",
            "plain text, ünïcode ✓ and a \\ backslash",
        );
        check("ok\n#7 by release-bot", "ok\\n#7 by release-bot");
        check("\x1b[31mred\x1b[0m", "\\x1b[31mred\\x1b[0m");
        check("a\rb\tc\0d\x7f", "a\\rb\\tc\\x00d\\x7f");
        check("\u{9b}31m \u{85}", "\\u{9b}31m \\u{85}");
        check("abc\u{202e}fed \u{2028}", "abc\\u{202e}fed \\u{2028}");
        check("", "");
        // Idempotent: escaped text has nothing left to escape.
        let once = escape("a\nb\x1b\u{9b}").to_string();
        assert_eq!(escape(&once).to_string(), once);
    }
}
