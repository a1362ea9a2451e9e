//! The manifest schema in `manifests/` and the code cannot drift apart.

use std::fs;
use std::path::Path;

use crate::util::Project;

/// Validates `instance` against `manifests/manifest.schema.json`.
fn check(instance: &serde_json::Value) -> Result<(), String> {
    check_against("manifest.schema.json", instance)
}

/// Validates `instance` against `location` in `manifests/`: a schema file,
/// or a place in one (`policy.schema.json#/$defs/event`).
fn check_against(location: &str, instance: &serde_json::Value) -> Result<(), String> {
    let file = location.split('#').next().unwrap();
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("manifests")
        .join(file);
    let schema: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(path).unwrap()).unwrap();
    let mut schemas = boon::Schemas::new();
    let mut compiler = boon::Compiler::new();
    compiler.add_resource(file, schema).unwrap();
    let idx = compiler.compile(location, &mut schemas).unwrap();
    schemas
        .validate(instance, idx)
        .map_err(|e| format!("{e:#}"))
}

pub fn validate(instance: &serde_json::Value, what: &str) {
    if let Err(e) = check(instance) {
        panic!("{what} does not match manifests/manifest.schema.json:\n{e}");
    }
}

#[test]
fn every_manifest_the_tool_writes_matches_the_schema() {
    let p = Project::new();
    p.write("app/x.py", "x");
    let v = p.json(&["publish", "--revision", "deadbeef"]);
    let key = v["written"][1].as_str().unwrap();
    let m: serde_json::Value =
        serde_json::from_slice(&fs::read(p.store().join(key)).unwrap()).unwrap();
    validate(&m, key);
    // Without a revision too (the field is optional).
    let q = Project::new();
    q.write("app/x.py", "x");
    q.ok(&["build"]);
    let m: serde_json::Value =
        serde_json::from_slice(&fs::read(q.path().join(".verbatim/build/manifest.json")).unwrap())
            .unwrap();
    validate(&m, "build manifest without revision");
    // Every deploy setting, the release hook and the migrations too.
    let r = Project::with_config(
        "[app]\ndir = \"app\"\n[deploy]\nshared = [\"uploads\"]\nmigrations = [\"*/migrations/*.py\"]\n\
         hooks.release = \"python manage.py migrate --noinput\"\nhooks.check = \"true\"\n",
    );
    r.write("app/shop/migrations/0001_initial.py", "x");
    r.ok(&["build"]);
    let m: serde_json::Value =
        serde_json::from_slice(&fs::read(r.path().join(".verbatim/build/manifest.json")).unwrap())
            .unwrap();
    assert_eq!(
        m["deploy"]["migration_files"],
        serde_json::json!(["shop/migrations/0001_initial.py"])
    );
    validate(&m, "build manifest with every deploy setting");
}

#[test]
fn examples_match_the_schema_and_parse() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests/examples");
    let mut n = 0;
    for e in fs::read_dir(&dir).unwrap() {
        let path = e.unwrap().path();
        let bytes = fs::read(&path).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        validate(&v, &path.display().to_string());
        verbatim::manifest::Manifest::parse(&bytes)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        n += 1;
    }
    assert!(n >= 1, "no examples in {}", dir.display());
}

#[test]
fn the_schema_rejects_what_the_code_rejects() {
    let mut v: serde_json::Value = serde_json::from_slice(
        &fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests/examples/minimal.json"))
            .unwrap(),
    )
    .unwrap();
    v["unexpected"] = 1.into();
    assert!(check(&v).is_err(), "schema allows unknown keys");
    assert!(verbatim::manifest::Manifest::parse(v.to_string().as_bytes()).is_err());

    let asset = |key: &str| {
        serde_json::json!({
            "cache_control": "public", "content_type": "text/css", "key": key,
            "integrity": format!("sha384-{}", "A".repeat(64)),
            "sha256": "0".repeat(64), "size": 1,
        })
    };
    let good = |v: &mut serde_json::Value| {
        v.as_object_mut().unwrap().remove("unexpected");
        v["assets"] = serde_json::json!({"css/a.css": asset("assets/css/a.0123456789ab.css")});
    };
    good(&mut v);
    assert!(check(&v).is_ok());
    assert!(verbatim::manifest::Manifest::parse(v.to_string().as_bytes()).is_ok());
    type Edit = fn(&mut serde_json::Value);
    let deploy = serde_json::json!({"check_timeout": 30, "hook_timeout": 600, "keep": 5});
    v["deploy"] = deploy;
    assert!(check(&v).is_ok());
    assert!(verbatim::manifest::Manifest::parse(v.to_string().as_bytes()).is_ok());
    let bad: [(&str, Edit); 10] = [
        ("a `..` shared path", |v| {
            v["deploy"]["shared"] = serde_json::json!(["../etc"])
        }),
        ("keep 0", |v| v["deploy"]["keep"] = 0.into()),
        ("an ESC in a hook", |v| {
            v["deploy"]["hooks"] = serde_json::json!({"check": "curl \u{1b}[2J"})
        }),
        ("an unknown hook", |v| {
            v["deploy"]["hooks"] = serde_json::json!({"pre_deploy": "true"})
        }),
        ("a `..` key", |v| {
            v["assets"]["css/a.css"]["key"] = "assets/../../etc/passwd".into()
        }),
        ("a `..` path", |v| {
            v["assets"] = serde_json::json!({"../x": v["assets"]["css/a.css"]})
        }),
        ("a leading `/`", |v| {
            v["assets"] = serde_json::json!({"/x": v["assets"]["css/a.css"]})
        }),
        ("an ESC in a path", |v| {
            v["assets"] = serde_json::json!({"a\u{1b}b": v["assets"]["css/a.css"]})
        }),
        ("CRLF in a content type", |v| {
            v["assets"]["css/a.css"]["content_type"] = "text/css\r\nX: y".into()
        }),
        ("a `..` reference", |v| {
            v["assets"]["css/a.css"]["references"] = serde_json::json!(["../b.css"])
        }),
    ];
    for (what, edit) in bad {
        let mut w = v.clone();
        edit(&mut w);
        assert!(check(&w).is_err(), "schema allows {what}");
        assert!(
            verbatim::manifest::Manifest::parse(w.to_string().as_bytes()).is_err(),
            "code allows {what}"
        );
    }
}

#[test]
fn every_policy_document_the_tool_writes_matches_the_policy_schema() {
    let p = Project::new();
    let m = crate::environments::release(&p, "1");
    p.ok(&["promote", &m, "--to", "dev"]);
    let key = crate::signing::openssh_key(p.path(), "ci");
    let signers = format!("release@ci {}\n", crate::signing::public(&key));
    p.write("allowed_signers", &signers);
    let set = ["policy", "set", "--reason", "sign prod", "--require"];
    p.ok(&[
        &set[..],
        &["prod=release@ci", "--allowed-signers", "allowed_signers"],
        &["--sign-moves", "prod=release@ci"],
        &["--rollout", "prod=1,50%,100%@5m"],
    ]
    .concat());
    p.ok(&[
        "policy",
        "set",
        "--order",
        "dev,prod",
        "--reason",
        "no preprod",
    ]);

    let read = |key: &str| -> serde_json::Value {
        serde_json::from_slice(&fs::read(p.store().join(key)).unwrap()).unwrap()
    };
    let pointer = read("policy.json");
    check_against("policy.schema.json", &pointer).unwrap_or_else(|e| panic!("policy.json: {e}"));
    assert_eq!(pointer["policy"]["allowed_signers"], signers.as_str());
    assert_eq!(
        pointer["policy"]["environments"][1],
        serde_json::json!({
            "name": "prod",
            "require": ["release@ci"],
            "sign_moves": ["release@ci"],
            "rollout": {"strategy": "waves", "waves": ["1", "50%", "100%"], "bake_secs": 300}
        })
    );
    let event = "policy.schema.json#/$defs/event";
    for seq in 1..=3 {
        let key = format!("policy/events/{seq:010}.json");
        check_against(event, &read(&key)).unwrap_or_else(|e| panic!("{key}: {e}"));
    }

    // What the code refuses, the schema refuses.
    type Edit = fn(&mut serde_json::Value);
    let bad: [(&str, Edit); 4] = [
        ("an unknown key", |v| v["extra"] = 1.into()),
        ("no environment", |v| {
            v["policy"]["environments"] = serde_json::json!([])
        }),
        ("an upper-case name", |v| {
            v["policy"]["environments"][0]["name"] = "Dev".into()
        }),
        ("an unknown rule", |v| {
            v["policy"]["environments"][0]["deny"] = "x".into()
        }),
    ];
    let code_refuses = |v: &serde_json::Value| {
        verbatim::environments::policy::PolicyPointer::parse(
            "policy.json",
            v.to_string().as_bytes(),
        )
        .map_or(true, |ptr| ptr.policy.check().is_err())
    };
    assert!(!code_refuses(&pointer));
    for (what, edit) in bad {
        let mut v = pointer.clone();
        edit(&mut v);
        assert!(
            check_against("policy.schema.json", &v).is_err(),
            "schema allows {what}"
        );
        assert!(code_refuses(&v), "code allows {what}");
    }
}

/// The timestamps `promote --sign-key` and `verbatim timestamp` write match
/// `manifests/timestamp.schema.json`, and what the host refuses to read the
/// schema refuses.
#[test]
fn every_timestamp_the_tool_writes_matches_the_schema() {
    let p = Project::new();
    p.write("app/index.html", "v1");
    let m = p.json(&["publish"])["manifest"]
        .as_str()
        .unwrap()
        .to_owned();
    let key = crate::signing::openssh_key(p.path(), "ci");
    let key = key.to_str().unwrap();
    p.ok(&["promote", &m, "--to", "dev", "--sign-key", key]);
    let path = p.store().join("envs/dev/timestamp.json");
    let read =
        || -> serde_json::Value { serde_json::from_slice(&fs::read(&path).unwrap()).unwrap() };
    let first = read();
    check_against("timestamp.schema.json", &first).unwrap_or_else(|e| panic!("promote's: {e}"));
    p.ok(&["timestamp", "dev", "--sign-key", key, "--valid-for", "2d"]);
    let again = read();
    check_against("timestamp.schema.json", &again).unwrap_or_else(|e| panic!("timestamp's: {e}"));
    assert_eq!(again["signed"]["seq"], 1);
    assert_ne!(again["signed"]["expires"], first["signed"]["expires"]);

    type Edit = fn(&mut serde_json::Value);
    let bad: [(&str, Edit); 3] = [
        ("an unknown key", |v| v["signed"]["extra"] = 1.into()),
        ("a short digest", |v| {
            v["signed"]["event"] = "sha256:ab".into()
        }),
        ("no signature", |v| v["signatures"] = serde_json::json!([])),
    ];
    for (what, edit) in bad {
        let mut v = again.clone();
        edit(&mut v);
        assert!(
            check_against("timestamp.schema.json", &v).is_err(),
            "schema allows {what}"
        );
    }
}

/// An artifact of several 1 MiB blocks carries its block index in the
/// manifest (as the schema says), a host inflates it in parallel into the
/// very bytes packed, and an index that does not add up is refused.
#[test]
fn a_multi_block_artifact_carries_its_index_and_unpacks_in_parallel() {
    let p = Project::new();
    let noise = crate::util::noise(3_500_000);
    p.write("app/big.bin", &noise);
    p.write("app/small.txt", "hello");
    let id = p.json(&["publish"])["manifest"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = p.path().join(".verbatim/build/manifest.json");
    let m: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    validate(&m, "a multi-block manifest");
    let blocks: Vec<u64> = m["artifact"]["blocks"]
        .as_array()
        .expect("an index")
        .iter()
        .map(|b| b.as_u64().unwrap())
        .collect();
    assert_eq!(blocks.len(), 4, "3.5 MB of content and tar headers");
    assert_eq!(
        blocks.iter().sum::<u64>() + 18,
        m["artifact"]["size"].as_u64().unwrap()
    );

    let into = p.path().join("host");
    p.ok(&["fetch", &id, "--into", into.to_str().unwrap()]);
    let hex = id.strip_prefix("sha256:").unwrap();
    let release = into.join("releases").join(hex);
    assert!(fs::read(release.join("big.bin")).unwrap() == noise);
    assert_eq!(fs::read(release.join("small.txt")).unwrap(), b"hello");

    // A corrupt store copy, same size: the digest, checked as the download
    // ends, refuses it although blocks were inflated meanwhile.
    let stored = p.store().join(m["artifact"]["key"].as_str().unwrap());
    let mut bytes = fs::read(&stored).unwrap();
    bytes[2_000_000] ^= 0x40;
    fs::write(&stored, bytes).unwrap();
    let other = p.path().join("host2");
    let err = p.fails(&["fetch", &id, "--into", other.to_str().unwrap()], 5);
    assert!(
        err.contains("the store copy is corrupt or was tampered with"),
        "{err}"
    );
    assert!(!other.join("releases").join(hex).exists());

    let mut wrong = m.clone();
    wrong["artifact"]["blocks"][0] = (blocks[0] + 1).into();
    let e = verbatim::manifest::Manifest::parse(wrong.to_string().as_bytes()).unwrap_err();
    assert!(format!("{e:#}").contains("artifact.blocks"), "{e:#}");
}
