//! A host: the machine side of a release. Its deploy root on disk
//! (`root`), what it accepts from an environment (`follow`: signed moves,
//! never backwards, fresh), staging a release there (`stage`), activating it with its
//! hooks and flipping back when they fail (`deploy`, `hooks`), reporting to
//! the store (`report`), a rollout's staging and release phase
//! (`release`), the environment's config written into `shared/` with its
//! `reload` hook (`config`), and the agent that keeps a host on an
//! environment's pointer (`agent`).

pub mod agent;
pub mod config;
pub mod deploy;
pub mod follow;
pub mod hooks;
pub mod id;
pub mod recover;
pub mod release;
pub mod report;
pub mod root;
pub mod service;
pub mod stage;
