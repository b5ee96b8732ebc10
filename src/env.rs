//! Every environment variable kiln honours, read here and nowhere else, each with what
//! it does. docs/environment.md is this table in prose (a test keeps them the same), and
//! the only other reads are of variables a command names itself ([`named`]).

use std::ffi::OsString;
use std::path::PathBuf;

/// One variable kiln reads.
#[derive(Debug, Clone, Copy)]
pub struct Var {
    pub name: &'static str,
    /// What it changes, one line (docs/environment.md shows the same words).
    pub what: &'static str,
}

impl Var {
    /// The value, when set and not empty (an empty variable counts as unset, as in docker).
    pub fn get(&self) -> Option<String> {
        std::env::var(self.name).ok().filter(|v| !v.is_empty())
    }

    /// The value as the OS gave it (paths), when set and not empty.
    pub fn get_os(&self) -> Option<OsString> {
        std::env::var_os(self.name).filter(|v| !v.is_empty())
    }

    pub fn path(&self) -> Option<PathBuf> {
        self.get_os().map(PathBuf::from)
    }

    /// Set to anything but `0`.
    pub fn on(&self) -> bool {
        self.get().is_some_and(|v| v != "0")
    }

    /// Set to `0`: the default is turned off.
    pub fn off(&self) -> bool {
        self.get().as_deref() == Some("0")
    }
}

const fn var(name: &'static str, what: &'static str) -> Var {
    Var { name, what }
}

// kiln's own.
pub const CA_BUNDLE: Var = var(
    "KILN_CA_BUNDLE",
    "`--ca-bundle`: a CA bundle for builds (the `ca-bundle` secret), registries and the gateway's upstream",
);
pub const DOCKER_CERTS_D: Var = var(
    "KILN_DOCKER_CERTS_D",
    "where docker's per-registry certificates live (default `/etc/docker/certs.d`)",
);
pub const BAKE_CACHE: Var = var(
    "KILN_BAKE_CACHE",
    "`0`: `kiln bake` answers nothing from its cache",
);
pub const BAKE_HANDOVER: Var = var(
    "KILN_BAKE_HANDOVER",
    "`0`: bake builders that cannot read the engine's store are not handed local bases as OCI layouts",
);
pub const ENGINE_BUILDER: Var = var(
    "KILN_ENGINE_BUILDER",
    "`legacy` or `buildkit`: the engine backend's builder (default: BuildKit when the engine has it)",
);
pub const PLAN_EXACT: Var = var(
    "KILN_PLAN_EXACT",
    "set: resolve every per-task and eval target for real instead of substituting placeholders (RULES.md)",
);
pub const REGISTRY_RETRIES: Var = var(
    "KILN_REGISTRY_RETRIES",
    "how often a 429/502/503/504 or dropped connection is retried, 0 to 100 (default 4)",
);
pub const REGISTRY_RETRY_SECS: Var = var(
    "KILN_REGISTRY_RETRY_SECS",
    "the seconds all retries of one registry request may take together (default 60)",
);
pub const GATEWAY_IMAGE: Var = var(
    "KILN_GATEWAY_IMAGE",
    "the image the gateway sidecar and a Harbor allowlist task's egress proxy run in (default `debian:bookworm-slim`)",
);
pub const REPLAY_SPEED: Var = var(
    "KILN_REPLAY_SPEED",
    "`--replay-speed` / `--speed`: pacing of replayed streams (`1` as recorded, `max` at once)",
);
pub const RUNNER: Var = var(
    "KILN_RUNNER",
    "the static `kiln-runner` to put into eval images (default: the one cargo built under `target/`)",
);
pub const SOURCE: Var = var("KILN_SOURCE", "the `source` label instead of git's remote");
pub const REVISION: Var = var(
    "KILN_REVISION",
    "the `revision` label instead of git's HEAD",
);
pub const VERSION: Var = var(
    "KILN_VERSION",
    "the `version` label instead of the one git describes",
);

// Other tools' variables, honoured as those tools do.
pub const REGISTRY: Var = var(
    "REGISTRY",
    "the fleet's bake variable, read as `docker buildx bake` reads it (RULES.md)",
);
pub const TAG: Var = var(
    "TAG",
    "the fleet's bake variable, read as `docker buildx bake` reads it (RULES.md)",
);
pub const SOURCE_DATE_EPOCH: Var = var(
    "SOURCE_DATE_EPOCH",
    "the `created` label (seconds since 1970), for reproducible builds",
);
pub const BUILDX_BUILDER: Var = var(
    "BUILDX_BUILDER",
    "the buildx builder when --builder is not given, as for docker buildx",
);
pub const DOCKER_HOST: Var = var(
    "DOCKER_HOST",
    "the engine's address (default unix:///var/run/docker.sock)",
);
pub const DOCKER_CONFIG: Var = var(
    "DOCKER_CONFIG",
    "the folder of docker's config.json and credential helpers (default ~/.docker)",
);
pub const STORAGE_DRIVER: Var = var(
    "STORAGE_DRIVER",
    "podman's storage driver, as podman takes it (kiln reads podman's store itself)",
);
pub const CONTAINERS_STORAGE_CONF: Var = var(
    "CONTAINERS_STORAGE_CONF",
    "podman's storage.conf, as podman takes it",
);
pub const XDG_CONFIG_HOME: Var = var(
    "XDG_CONFIG_HOME",
    "where podman's per-user storage.conf is looked for",
);
pub const XDG_DATA_HOME: Var = var(
    "XDG_DATA_HOME",
    "where podman's per-user store is looked for",
);
pub const XDG_CACHE_HOME: Var = var(
    "XDG_CACHE_HOME",
    "kiln's cache (bake answers, site Dockerfiles): $XDG_CACHE_HOME/kiln (default ~/.cache/kiln)",
);
pub const HOME: Var = var("HOME", "the base of the defaults above");
pub const CARGO_TARGET_DIR: Var = var(
    "CARGO_TARGET_DIR",
    "where a development checkout's runner binary is looked for (default target/)",
);

/// Every variable above, in the order docs/environment.md lists them.
pub const ALL: &[Var] = &[
    CA_BUNDLE,
    DOCKER_CERTS_D,
    BAKE_CACHE,
    BAKE_HANDOVER,
    ENGINE_BUILDER,
    PLAN_EXACT,
    REGISTRY_RETRIES,
    REGISTRY_RETRY_SECS,
    GATEWAY_IMAGE,
    REPLAY_SPEED,
    RUNNER,
    SOURCE,
    REVISION,
    VERSION,
    REGISTRY,
    TAG,
    SOURCE_DATE_EPOCH,
    BUILDX_BUILDER,
    DOCKER_HOST,
    DOCKER_CONFIG,
    STORAGE_DRIVER,
    CONTAINERS_STORAGE_CONF,
    XDG_CONFIG_HOME,
    XDG_DATA_HOME,
    XDG_CACHE_HOME,
    HOME,
    CARGO_TARGET_DIR,
];

/// A variable a command names itself (`--pass-env NAME`, an agent's API key variable,
/// a task's `${VAR}`): its value, unset and empty kept apart.
pub fn named(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// The whole environment, for `kiln bake`, whose files may name any variable.
pub fn all() -> std::collections::BTreeMap<String, String> {
    std::env::vars().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// docs/environment.md lists exactly the variables of [`ALL`], with the same words.
    #[test]
    fn the_docs_list_every_variable() {
        let doc = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/environment.md"),
        )
        .unwrap();
        for v in ALL {
            let row = format!("| `{}` | {} |", v.name, v.what);
            assert!(
                doc.contains(&row),
                "docs/environment.md lacks the row {row}"
            );
        }
        let rows = doc
            .lines()
            .filter(|l| l.starts_with("| `") && !l.contains("(runner)"))
            .count();
        assert_eq!(
            rows,
            ALL.len(),
            "docs/environment.md lists a variable kiln does not read"
        );
    }

    /// No module reads the environment but this one (tests and the build script aside).
    #[test]
    fn nothing_else_reads_the_environment() {
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut readers = Vec::new();
        for e in walkdir::WalkDir::new(&src) {
            let p = e.unwrap().into_path();
            if p.extension().is_none_or(|x| x != "rs") || p.ends_with("env.rs") {
                continue;
            }
            let text = std::fs::read_to_string(&p).unwrap();
            let code = text.split("#[cfg(test)]").next().unwrap();
            if ["env::var(", "env::var_os(", "env::vars("]
                .iter()
                .any(|r| code.contains(r))
            {
                readers.push(p.display().to_string());
            }
        }
        assert!(
            readers.is_empty(),
            "read the environment through src/env.rs: {readers:?}"
        );
    }
}
