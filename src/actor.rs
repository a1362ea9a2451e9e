//! Who is acting: the name recorded in every event verbatim writes.
//!
//! The ground floor: it imports nothing of the crate.

/// Who is acting: `VERBATIM_ACTOR`, the CI's user variable, else the OS user.
pub fn actor() -> String {
    for var in [
        "VERBATIM_ACTOR",
        "GITHUB_ACTOR",
        "GITLAB_USER_LOGIN",
        "BUILDKITE_BUILD_CREATOR",
        "USER",
        "LOGNAME",
    ] {
        if let Ok(v) = std::env::var(var) {
            if !v.trim().is_empty() {
                return v.trim().to_owned();
            }
        }
    }
    os_user().unwrap_or_else(|| "unknown".into())
}

/// The name of the current uid from /etc/passwd (no libc needed).
fn os_user() -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let uid = std::fs::metadata("/proc/self").ok()?.uid();
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let mut f = l.split(':');
        let name = f.next()?;
        (f.nth(1)?.parse::<u32>().ok()? == uid).then(|| name.to_owned())
    })
}
