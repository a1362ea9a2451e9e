//! Environments: pointers to manifests, and the append-only history behind them.
//!
//! The history is the truth: event `n` of an environment (`envs/<env>/events/
//! <n>.json`, create-only) records one move of its pointer. The pointer
//! (`envs/<env>.json`, compare-and-swap) is a cache of the newest event,
//! derived from it byte for byte, so anyone can complete a move a crashed
//! process left half done. Creating event `n+1` is what wins a race: exactly
//! one writer can. Event `n+1` records the sha256 of event `n`'s stored
//! bytes (`prev`), so the history is a hash chain: an event changed,
//! removed or inserted breaks the link after it ([`check_link`]).
//!
//! A canary check is part of the move it checks: the promote event carries
//! the check (command and deadline) before the check starts, so a promoter
//! killed mid-check leaves a record that the check never finished. Events
//! are immutable, so how the check ended goes elsewhere: a create-only
//! [`CheckRecord`] at `envs/<env>/checks/<seq>.json` (and, on failure, the
//! auto-rollback event after it). [`check_status`] turns these, and the
//! clock, into what the check's state is; [`canary_gate`] refuses a promote
//! on top of a manifest whose check did not pass.
//!
//! The files, each using only those before it: the pure rules [`log`] (any
//! log and its hash chain), [`event`], [`checks`], [`gates`] and [`policy`];
//! [`reports`] (hosts' reports); [`reader`] (the one way a log is read,
//! checked); [`policy_store`] (the order every command follows);
//! [`signatures`]; [`timestamp`] (freshness); [`moves`] (the one place pointers move); [`canary`];
//! [`resolve`] (what a `<manifest>` argument names); the operations
//! [`promote`] (promote, rollback) and [`views`] (status, history).
//!
//! Each environment's config (`verbatim config`) is a log of its own
//! beside its history: [`envconfig`] (pure: values, events, the page
//! block), [`envconfig_store`] (read and append), [`configure`] (the
//! operations); [`site`] writes it into the pages.
//!
//! [`observe`]: what moves and failed hosts are told to (`notify`,
//! `dashboard`).

pub mod canary;
pub mod checks;
pub mod configure;
pub mod envconfig;
pub mod envconfig_store;
pub mod event;
pub mod gates;
pub mod hosts;
pub mod log;
pub mod moves;
pub mod observe;
pub mod policy;
pub mod policy_store;
pub mod promote;
pub mod reader;
pub mod reports;
pub mod resolve;
pub mod rolling;
pub mod rollout;
pub mod rollout_status;
pub mod signatures;
pub mod site;
pub mod timestamp;
pub mod views;
pub mod waves;

pub use checks::*;
pub use event::*;
pub use gates::*;
pub use log::*;

#[cfg(test)]
mod tests;
