//! Talking to an OCI registry: where images go (`reference`), the credentials
//! `docker login` left (`auth`), answering the registry's authentication challenges
//! with bearer tokens per scope (`token`), how a host is reached (`transport`: HTTPS
//! or not, retries), manifests and indexes (`manifest`), the distribution API for
//! reading back what is there (`client`), and pushing an image from the local store
//! that holds it and checking the result in the registry (`push`).
//!
//! The one entry point other modules need is [`push::push_and_verify`]; the rest is
//! public so that release and tests can read the registry the same way.

pub mod auth;
pub mod client;
pub mod manifest;
pub mod push;
pub mod reference;
pub mod token;
pub mod transport;

pub use auth::Credentials;
pub use client::Client;
pub use push::{push_and_verify, push_and_verify_observed, Published, PushObserver, PushRequest};
pub use reference::{Reference, Registry};
pub use transport::Transport;
