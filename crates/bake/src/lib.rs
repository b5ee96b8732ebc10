//! kiln-bake: Docker Bake file resolution, identical to `docker buildx bake --print`.

pub mod functions;
pub mod value;
