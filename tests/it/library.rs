//! The operations called from Rust, as a program embedding verbatim would
//! call them: build, publish, promote and deploy on a local store, with no
//! binary in between. The binary then reads what they wrote, so both sides
//! of the library boundary agree.

use std::fs;

use verbatim::builder::{self, BuildOptions};
use verbatim::config::Config;
use verbatim::environments::event::Kind;
use verbatim::environments::moves::{MoveRequest, Refused};
use verbatim::environments::promote;
use verbatim::environments::reader::Reader;
use verbatim::error::GateRefused;
use verbatim::host::deploy::{deploy, Host, Request, Target};
use verbatim::progress::Silent;
use verbatim::publish::{publish, PublishOptions};
use verbatim::store;

use crate::util::Project;

fn promotion(env: &str, to: verbatim::digest::Digest) -> MoveRequest<'_> {
    MoveRequest {
        env,
        to,
        kind: Kind::Promote,
        reason: None,
        force: false,
        check: None,
        sign: None,
        dry_run: false,
        rollout: None,
    }
}

#[test]
fn build_publish_promote_and_deploy_from_rust() {
    let p = Project::with_config("[app]\ndir = \"app\"\n[assets]\ndir = \"static\"\n");
    p.write("app/server.py", "print('v1')\n");
    p.write("static/site.css", "body{background:url(img/a.png)}");
    p.write("static/img/a.png", b"\x89PNG one");
    let cfg = Config::load(Some(&p.path().join("verbatim.toml")), &Default::default()).unwrap();
    cfg.check_dirs().unwrap();

    let built = builder::build(&cfg, &BuildOptions::default(), &Silent).unwrap();
    assert_eq!(built.manifest.assets.len(), 2);
    assert!(built.artifact_path.is_file());

    let store = store::open(&cfg.store_url, &cfg.store_base, &cfg.s3).unwrap();
    let publishing = PublishOptions {
        env: None,
        sign: None,
        dry_run: false,
        require_clean: false,
        observers: vec![],
    };
    let first = publish(store.as_ref(), &cfg, &built, &publishing, &Silent).unwrap();
    assert_eq!(first.manifest, built.id.to_string());
    assert!(
        first.tally.unchanged.is_empty(),
        "{:?}",
        first.tally.unchanged
    );
    assert_eq!(
        first.tally.written.len(),
        4,
        "2 assets, the artifact, the manifest"
    );
    let again = publish(store.as_ref(), &cfg, &built, &publishing, &Silent).unwrap();
    assert!(again.tally.written.is_empty(), "{:?}", again.tally.written);

    let reader = Reader::new(store.as_ref(), cfg.concurrency);
    let moved = promote::promote(&reader, &cfg, &promotion("dev", built.id), &Silent).unwrap();
    assert_eq!((moved.result, moved.seq), ("moved", 1));
    assert!(moved.gates.iter().all(|g| g.ok), "{:?}", moved.gates);

    // A gate that refuses is a typed error carrying the refused move.
    let refused = promote::promote(&reader, &cfg, &promotion("prod", built.id), &Silent)
        .expect_err("prod before preprod");
    assert!(refused.error.chain().any(|c| c.is::<GateRefused>()));
    let report = &refused
        .error
        .downcast_ref::<Refused>()
        .expect("the report")
        .0;
    assert_eq!((report.env.as_str(), report.result), ("prod", "refused"));

    let root = p.path().join("host");
    let request = Request {
        target: Target::Env("dev"),
        host: Host {
            root: &root,
            id: "web1",
            hook_env: &[],
            trust: None,
            report_key: None,
            release_runner: false,
            interval_ms: None,
        },
        wait: true,
    };
    let deployed = deploy(Some(store.as_ref()), &request, &Silent).unwrap();
    assert_eq!(deployed.result, "activated");
    assert!(deployed.fetched && deployed.reported);
    assert_eq!(
        fs::read_link(root.join("current")).unwrap(),
        std::path::Path::new("releases").join(built.id.hex())
    );
    assert_eq!(
        fs::read_to_string(root.join("current/server.py")).unwrap(),
        "print('v1')\n"
    );

    // The binary reads what the library wrote.
    let status = p.json(&["status", "dev"]);
    let dev = &status["environments"][0];
    assert_eq!(dev["manifest"], built.id.to_string());
    assert_eq!(dev["hosts_on_manifest"], 1);
    let history = p.json(&["history", "dev", "--verify"]);
    assert_eq!(history["verified"]["events"], 1);
}

/// The same operations from Rust against a real S3 server (s3s-fs), and
/// what someone who can write the bucket would try: other bytes of the
/// same size under the artifact's key. The deploy refuses them as an
/// integrity error (exit class 5) and `current` stays on the release it ran.
#[test]
fn deploy_from_rust_refuses_an_artifact_swapped_in_the_bucket() {
    let Some(server) = crate::s3::S3Server::start() else {
        return;
    };
    let s3 = crate::s3::store(&server.url(), "lib");
    let p = Project::with_config("[app]\ndir = \"app\"\n");
    let cfg = Config::load(Some(&p.path().join("verbatim.toml")), &Default::default()).unwrap();
    let publishing = PublishOptions {
        env: None,
        sign: None,
        dry_run: false,
        require_clean: false,
        observers: vec![],
    };
    let mut ids = Vec::new();
    for version in ["v1", "v2"] {
        p.write("app/server.py", format!("print('{version}')\n"));
        let built = builder::build(&cfg, &BuildOptions::default(), &Silent).unwrap();
        publish(&s3, &cfg, &built, &publishing, &Silent).unwrap();
        ids.push((built.id, built.manifest.artifact.key.clone()));
    }
    let root = p.path().join("host");
    let host = Host {
        root: &root,
        id: "web1",
        hook_env: &[],
        trust: None,
        report_key: None,
        release_runner: false,
        interval_ms: None,
    };
    let reader = Reader::new(&s3, cfg.concurrency);
    let deploy_dev = || {
        let request = Request {
            target: Target::Env("dev"),
            host,
            wait: true,
        };
        deploy(Some(&s3), &request, &Silent)
    };
    promote::promote(&reader, &cfg, &promotion("dev", ids[0].0), &Silent).unwrap();
    assert_eq!(deploy_dev().unwrap().result, "activated");

    promote::promote(&reader, &cfg, &promotion("dev", ids[1].0), &Silent).unwrap();
    let stored = server.object_path(&format!("lib/{}", ids[1].1));
    let mut bytes = fs::read(&stored).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    fs::write(&stored, bytes).unwrap();

    let failed = deploy_dev().expect_err("a swapped artifact");
    assert_eq!(
        failed.error.chain().find_map(verbatim::error::class_of),
        Some(verbatim::error::Class::Integrity),
        "{:#}",
        failed.error
    );
    assert_eq!(
        fs::read_link(root.join("current")).unwrap(),
        std::path::Path::new("releases").join(ids[0].0.hex())
    );
    assert!(!root.join("releases").join(ids[1].0.hex()).exists());
}
