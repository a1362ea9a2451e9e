//! The policy's trust root is pinned, not downloaded. An attacker who can
//! write the store writes a consistent policy event (with the real binary,
//! no key, or a key of their own) that trusts their key for the principal
//! a gate requires, and signs the manifest with it. A promoter holding
//! `--policy-signers` refuses that policy (exit 5) instead of passing the
//! gate; one without it is fooled, which is what the pin is for.

use std::path::Path;

use crate::signing::{openssh_key, public};
use crate::util::{exits, success, Project};

const PIN: &str = "--policy-signers=policy_signers";

fn signed(p: &Project, args: &[&str], key: &Path) -> String {
    String::from_utf8(success(p.cmd(args).arg("--sign-key").arg(key))).unwrap()
}

#[test]
fn a_policy_the_team_did_not_sign_rules_nothing() {
    let p = Project::new();
    p.write("app/index.html", "v1");
    let m = p.json(&["publish"])["manifest"]
        .as_str()
        .unwrap()
        .to_owned();
    let (ci, qa, mallory) = (
        openssh_key(p.path(), "ci"),
        openssh_key(p.path(), "qa"),
        openssh_key(p.path(), "mallory"),
    );
    p.write("policy_signers", format!("ops@team {}\n", public(&ci)));
    p.write("qa_signers", format!("qa@team {}\n", public(&qa)));
    p.write("evil_signers", format!("qa@team {}\n", public(&mallory)));

    // The first move stores the policy: under the pin, only signed.
    let err = p.fails(&["promote", &m, "--to", "dev", PIN], 2);
    assert!(err.contains("pass --sign-key"), "{err}");
    assert!(!p.store().join("policy.json").exists(), "nothing written");
    assert!(!p.store().join("envs/dev.json").exists(), "nothing written");
    signed(&p, &["promote", &m, "--to", "dev", PIN], &ci);
    let set = [
        "policy",
        "set",
        "--require",
        "preprod=qa@team",
        "--allowed-signers",
        "qa_signers",
        "--reason",
        "QA signs before preprod",
        PIN,
    ];
    signed(&p, &set, &ci);
    let err = p.fails(&["promote", &m, "--to", "preprod", PIN], 3);
    assert!(err.contains("missing: qa@team"), "{err}");

    // The attacker: a consistent policy event, unsigned, trusting their key.
    let forge = [
        "policy",
        "set",
        "--allowed-signers",
        "evil_signers",
        "--reason",
        "routine",
    ];
    p.ok(&forge);
    let err = p.fails(&["policy", "history", "--verify"], 5);
    assert!(
        err.contains("policy event 3 is not signed, but policy event 1"),
        "{err}"
    );
    success(p.cmd(&["sign", &m, "--key"]).arg(&mallory));
    let err = p.fails(&["promote", &m, "--to", "preprod", PIN], 5);
    assert!(
        err.contains("policy event 3")
            && err.contains("is not signed by a key policy_signers lists"),
        "{err}"
    );
    assert!(
        !p.store().join("envs/preprod.json").exists(),
        "nothing moved"
    );
    let err = p.fails(&["status", PIN], 5);
    assert!(err.contains("policy event 3"), "{err}");

    // Signed by their own key: still not a key the pin lists.
    let again = [&forge[..4], &["--reason", "routine again"]].concat();
    let mut c = p.cmd(&again);
    success(
        c.args(["--order", "dev,preprod,prod"])
            .arg("--sign-key")
            .arg(&mallory),
    );
    let err = p.fails(&["promote", &m, "--to", "preprod", PIN], 5);
    assert!(err.contains("1 valid signature(s) by other keys"), "{err}");

    // Without the pin, the forged policy passes the gate: what it is for.
    p.ok(&["promote", &m, "--to", "preprod"]);
    let err = exits(&mut p.cmd(&["history", "preprod", PIN]), 5);
    assert!(err.contains("refusing the policy in effect"), "{err}");
}
