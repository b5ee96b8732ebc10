//! The build plan: the images a request needs, bases first.

mod spec;

pub use spec::{BakeRequest, BuildSpec, Secret};
