//! Image stores: Docker's (the engine and bake backends build into it) and
//! podman's. An image in one is invisible to the other, so kiln records where it
//! built each image and can look in both.

use std::fmt;

/// A local image store.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Store {
    Docker,
    Podman,
}

impl Store {
    pub fn name(self) -> &'static str {
        match self {
            Store::Docker => "docker",
            Store::Podman => "podman",
        }
    }

    pub fn other(self) -> Store {
        match self {
            Store::Docker => Store::Podman,
            Store::Podman => Store::Docker,
        }
    }
}

impl fmt::Display for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
