//! The fixed paths of an eval image (docs/scenario-format.md §2), optionally moved
//! under a test root so the phases can be exercised on a host.

use std::path::{Path, PathBuf};

/// uid/gid the agent runs as inside eval images.
pub const AGENT_UID: u32 = 1000;
pub const AGENT_USER: &str = "agent";

#[derive(Debug, Clone)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    /// The real image layout (root `/`).
    pub fn image() -> Layout {
        Layout {
            root: PathBuf::from("/"),
        }
    }

    /// Every fixed path under `root` instead of `/` (tests only).
    pub fn under(root: &Path) -> Layout {
        Layout {
            root: root.to_path_buf(),
        }
    }

    /// An absolute in-image path, resolved under the root.
    pub fn resolve(&self, abs: &str) -> PathBuf {
        self.root.join(abs.trim_start_matches('/'))
    }

    pub fn kiln_dir(&self) -> PathBuf {
        self.resolve("/kiln")
    }
    pub fn tasks_dir(&self) -> PathBuf {
        self.resolve("/kiln/tasks")
    }
    pub fn solution_dir(&self, task: &str) -> PathBuf {
        self.resolve("/kiln/solutions").join(task)
    }
    pub fn agent_entry(&self) -> PathBuf {
        self.resolve("/opt/agent/run")
    }
    pub fn agent_name_file(&self) -> PathBuf {
        self.resolve("/opt/agent/name")
    }
    pub fn run_dir(&self) -> PathBuf {
        self.resolve("/run/kiln")
    }
    pub fn agent_home(&self) -> PathBuf {
        self.resolve("/home/agent")
    }
    pub fn passwd(&self) -> PathBuf {
        self.resolve("/etc/passwd")
    }
    pub fn default_output(&self) -> PathBuf {
        self.resolve("/output")
    }
}

/// uid, gid and home of `name` in an /etc/passwd file.
pub fn lookup_user(passwd: &Path, name: &str) -> Option<(u32, u32, String)> {
    let text = std::fs::read_to_string(passwd).ok()?;
    text.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() >= 6 && f[0] == name {
            Some((f[2].parse().ok()?, f[3].parse().ok()?, f[5].to_string()))
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_and_passwd() {
        let l = Layout::under(Path::new("/tmp/x"));
        assert_eq!(l.resolve("/workspace"), PathBuf::from("/tmp/x/workspace"));
        assert_eq!(Layout::image().tasks_dir(), PathBuf::from("/kiln/tasks"));
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("passwd");
        std::fs::write(
            &p,
            "root:x:0:0:root:/root:/bin/sh\npostgres:x:101:104::/var/lib/postgresql:/bin/bash\n",
        )
        .unwrap();
        assert_eq!(
            lookup_user(&p, "postgres"),
            Some((101, 104, "/var/lib/postgresql".into()))
        );
        assert_eq!(lookup_user(&p, "nobody"), None);
    }
}
