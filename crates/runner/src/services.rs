//! Declared services: started in their own process groups, readiness-polled,
//! restarted at grade time if they died, stopped at the end of `all`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::layout::{lookup_user, Layout};
use crate::process::{self, Spec};
use crate::scenario::Service;

const READY_POLL: Duration = Duration::from_millis(500);
const READY_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);

pub struct Running {
    pub service: Service,
    pub child: Option<Child>,
    pub log: PathBuf,
}

pub struct Services {
    pub running: Vec<Running>,
    env: BTreeMap<String, String>,
    cwd: PathBuf,
    passwd: PathBuf,
}

impl Services {
    /// `env` is the base environment every service process gets (plus its own `env`).
    pub fn new(
        services: &[Service],
        env: BTreeMap<String, String>,
        output: &Path,
        layout: &Layout,
    ) -> Services {
        Services {
            running: services
                .iter()
                .map(|s| Running {
                    service: s.clone(),
                    child: None,
                    log: output.join("services").join(format!("{}.log", s.name)),
                })
                .collect(),
            env,
            cwd: layout.resolve("/"),
            passwd: layout.passwd(),
        }
    }

    fn start_one(&mut self, i: usize) -> Result<(), String> {
        let svc = self.running[i].service.clone();
        let mut env = self.env.clone();
        env.extend(svc.env.clone());
        let mut spec = Spec::shell(
            &svc.command,
            &self.cwd,
            env,
            &self.running[i].log,
            Duration::MAX,
        );
        if let Some(user) = &svc.user {
            let (uid, gid, home) = lookup_user(&self.passwd, user).ok_or_else(|| {
                format!(
                    "service {}: user {user:?} is not in {}",
                    svc.name,
                    self.passwd.display()
                )
            })?;
            spec.user = Some((uid, gid));
            spec.env.insert("HOME".into(), home);
            spec.env.insert("USER".into(), user.clone());
        }
        crate::log::info(&format!("service {}: starting", svc.name));
        let child = process::spawn(&spec)
            .map_err(|e| format!("service {}: cannot start: {e}", svc.name))?;
        self.running[i].child = Some(child);
        Ok(())
    }

    fn ready_probe(&self, i: usize) -> bool {
        let svc = &self.running[i].service;
        let Some(ready) = &svc.ready else { return true };
        let mut env = self.env.clone();
        env.extend(svc.env.clone());
        let mut spec = Spec::shell(
            ready,
            &self.cwd,
            env,
            &self.running[i].log,
            READY_ATTEMPT_TIMEOUT,
        );
        spec.grace = Duration::from_millis(500);
        process::run(&spec).success()
    }

    /// Polls `ready` until it passes; fails if the service exits or the time is up.
    fn wait_ready(&mut self, i: usize) -> Result<(), String> {
        let name = self.running[i].service.name.clone();
        let timeout = Duration::from_secs(self.running[i].service.ready_timeout_sec);
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(child) = self.running[i].child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    let tail = crate::fsutil::read_tail(&self.running[i].log, 1024);
                    return Err(format!(
                        "service {name} exited ({status}) before it was ready; log tail: {tail}"
                    ));
                }
            }
            if self.ready_probe(i) {
                crate::log::info(&format!("service {name}: ready"));
                return Ok(());
            }
            if process::interrupted() {
                return Err(format!(
                    "service {name}: the runner was interrupted while waiting for it"
                ));
            }
            if Instant::now() >= deadline {
                let tail = crate::fsutil::read_tail(&self.running[i].log, 1024);
                return Err(format!(
                    "service {name} not ready after {} s; log tail: {tail}",
                    timeout.as_secs()
                ));
            }
            sleep(READY_POLL);
        }
    }

    /// Starts every service in order, each ready before the next starts.
    pub fn start_all(&mut self) -> Result<(), String> {
        for i in 0..self.running.len() {
            self.start_one(i)?;
            self.wait_ready(i)?;
        }
        Ok(())
    }

    /// Readiness of every service right now (name → ready).
    pub fn health(&mut self) -> BTreeMap<String, bool> {
        (0..self.running.len())
            .map(|i| {
                (
                    self.running[i].service.name.clone(),
                    self.alive(i) && self.ready_probe(i),
                )
            })
            .collect()
    }

    fn alive(&mut self, i: usize) -> bool {
        match self.running[i].child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            // Started by an earlier invocation (separate phases): only `ready` can tell.
            None => true,
        }
    }

    /// Restarts the services that are not ready, so graders can query them.
    pub fn restore(&mut self, health: &BTreeMap<String, bool>) -> Vec<String> {
        let mut notes = Vec::new();
        for i in 0..self.running.len() {
            let name = self.running[i].service.name.clone();
            if health.get(&name).copied().unwrap_or(true) {
                continue;
            }
            if let Some(mut child) = self.running[i].child.take() {
                process::terminate_group(&mut child, Duration::from_secs(5));
            }
            let outcome = self.start_one(i).and_then(|_| self.wait_ready(i));
            notes.push(match outcome {
                Ok(()) => format!("service {name} was not ready at grade time and was restarted"),
                Err(e) => format!(
                    "service {name} was not ready at grade time and could not be restarted: {e}"
                ),
            });
        }
        notes
    }

    /// Leaves the services running after this process exits (`prepare` on its own).
    pub fn detach(&mut self) {
        for r in &mut self.running {
            r.child = None;
        }
    }

    /// Stops the services this process started (SIGTERM, then SIGKILL).
    pub fn stop_all(&mut self) {
        for r in self.running.iter_mut().rev() {
            if let Some(mut child) = r.child.take() {
                crate::log::info(&format!("service {}: stopping", r.service.name));
                process::terminate_group(&mut child, process::KILL_GRACE);
            }
        }
    }
}

impl Drop for Services {
    fn drop(&mut self) {
        self.stop_all();
    }
}
