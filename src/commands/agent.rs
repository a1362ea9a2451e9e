//! `verbatim agent ENV --root DIR`: keep a host on an environment.
//!
//! A loop: HEAD the environment's pointer (one cheap request; its ETag
//! says whether it moved), and when it moved since the last deploy, deploy
//! it as `verbatim deploy ENV` would. A deploy whose hooks failed is not
//! retried until the pointer moves again (the host reported `failed`, and
//! the environment is expected to roll back); a store error is retried
//! with exponential backoff. SIGTERM, SIGINT or SIGHUP end the loop: a
//! running deploy abandons its download or hook cleanly (`current` stays
//! on a complete release) and the agent exits 0.

use std::hash::BuildHasher;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::Serialize;

use super::deploy::{self, Request, Target};
use crate::cli::{AgentArgs, Global};
use crate::environments as envs;
use crate::error::UsageError;
use crate::output::Printer;
use crate::store::{ETag, Key};

/// The longest pause between attempts after store errors.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// One line of `agent --json` per deploy attempt.
#[derive(Serialize)]
struct AttemptJson {
    time: String,
    #[serde(flatten)]
    deploy: Option<deploy::DeployJson>,
    /// Why the attempt failed, if it did.
    error: Option<String>,
}

pub fn run(g: &Global, args: &AgentArgs, printer: &Printer) -> Result<()> {
    crate::config::check_env_name(&args.env).map_err(UsageError)?;
    let host = deploy::host_id(&args.host)?;
    let store = super::open_store_for(g)?;
    let trust =
        crate::trust::Trust::new(args.trust.allowed_signers.as_deref(), &args.trust.require)?;
    let _agent = crate::host::agent_lock(&args.host.root)?;
    let _signals = crate::signals::Signals::install().context("installing signal handlers")?;
    let key = Key::new(envs::pointer_key(&args.env))?;
    printer.note(format!(
        "agent {host}: keeping {} on {} of {}, looking every {:?}",
        args.host.root.display(),
        args.env,
        store.location(),
        args.interval
    ));
    let mut done: Option<ETag> = None;
    let mut errors: u32 = 0;
    let mut said_empty = false;
    while crate::signals::caught().is_none() {
        let step: Result<()> = match store.head(&key) {
            Err(e) => Err(e.into()),
            Ok(None) => {
                if !said_empty {
                    printer.note(format!("nothing is live in {} yet; waiting", args.env));
                    said_empty = true;
                }
                Ok(())
            }
            Ok(Some(meta)) if done.as_ref() == Some(&meta.etag) => Ok(()),
            Ok(Some(meta)) => {
                let req = Request {
                    target: Target::Env(&args.env),
                    root: &args.host.root,
                    host: &host,
                    hook_env: &args.host.hook_env,
                    wait: true,
                    trust: trust.as_ref(),
                };
                let attempt = deploy::deploy(Some(store.as_ref()), &req, printer);
                let time = crate::clock::rfc3339(crate::clock::now());
                match attempt {
                    Ok(out) => {
                        if out.result != "unchanged" {
                            printer
                                .result(format!("{} {} {}", args.env, out.result, out.manifest))?;
                        }
                        printer.json_line(&AttemptJson {
                            time,
                            deploy: Some(out),
                            error: None,
                        })?;
                        done = Some(meta.etag);
                        Ok(())
                    }
                    Err(_) if crate::signals::caught().is_some() => break,
                    Err(e) => {
                        printer.json_line(&AttemptJson {
                            time,
                            deploy: None,
                            error: Some(format!("{e:#}")),
                        })?;
                        if e.chain().find_map(crate::error::class_of)
                            == Some(crate::error::Class::CheckFailed)
                        {
                            // Reported `failed`: wait for the pointer to move.
                            printer.warn(format!("{e:#}; waiting for {} to move", args.env));
                            done = Some(meta.etag);
                            Ok(())
                        } else {
                            Err(e)
                        }
                    }
                }
            }
        };
        let pause = match step {
            Ok(()) => {
                errors = 0;
                jitter(args.interval)
            }
            Err(e) => {
                errors = errors.saturating_add(1);
                let backoff = args
                    .interval
                    .saturating_mul(1 << errors.min(10))
                    .min(MAX_BACKOFF.max(args.interval));
                printer.warn(format!(
                    "{e:#}; trying again in {:.1}s",
                    backoff.as_secs_f64()
                ));
                jitter(backoff)
            }
        };
        sleep_unless_signalled(pause);
    }
    if let Some(sig) = crate::signals::caught() {
        printer.note(format!(
            "{}: agent stopped",
            crate::signals::signal_name(sig)
        ));
    }
    Ok(())
}

/// `d` ± 10 %, so a fleet started at once does not poll in step.
fn jitter(d: Duration) -> Duration {
    let r = std::collections::hash_map::RandomState::new().hash_one(Instant::now());
    let factor = 0.9 + (r % 2001) as f64 / 10_000.0;
    d.mul_f64(factor)
}

fn sleep_unless_signalled(d: Duration) {
    let end = Instant::now() + d;
    while crate::signals::caught().is_none() {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        std::thread::sleep(left.min(Duration::from_millis(50)));
    }
}
