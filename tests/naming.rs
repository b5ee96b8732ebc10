//! The naming module: image references per kind, task-id lowercasing, long names.

use kiln::naming::{self, Kind, Naming};

fn n() -> Naming {
    Naming::new("kiln.local", "dev")
}

#[test]
fn references_per_kind() {
    assert_eq!(n().core("base"), "kiln.local/core/base:dev");
    assert_eq!(
        n().benchmark("metric-backfill", None),
        "kiln.local/benchmarks/metric-backfill:dev"
    );
    assert_eq!(n().agent("oracle"), "kiln.local/agents/oracle:dev");
    assert_eq!(
        n().eval("metric-backfill", None, "oracle"),
        "kiln.local/evals/metric-backfill--oracle:dev"
    );
}

#[test]
fn uppercase_and_dotted_task_ids_are_lowercased_in_names_only() {
    assert_eq!(
        n().benchmark("terminal-lite", Some("Fix.Config")),
        "kiln.local/benchmarks/terminal-lite-fix.config:dev"
    );
    assert_eq!(
        n().eval("terminal-lite", Some("Fix.Config"), "null"),
        "kiln.local/evals/terminal-lite-fix.config--null:dev"
    );
    assert_eq!(naming::task_component("ABC.Def_G-h"), "abc.def_g-h");
    assert!(naming::validate_task_id("Fix.Config").is_ok());
}

#[test]
fn long_names() {
    let id = format!("T{}", "x".repeat(127));
    assert!(naming::validate_task_id(&id).is_ok());
    let image = n().eval("b", Some(&id), "a");
    assert_eq!(
        image,
        format!("kiln.local/evals/b-t{}--a:dev", "x".repeat(127))
    );
    let err = naming::validate_task_id(&format!("{id}y")).unwrap_err();
    assert!(
        err.to_string()
            .contains("at most 128 characters, this one has 129"),
        "{err}"
    );
    // Counted in characters, not bytes (the id is refused for its letters anyway).
    assert!(naming::validate_task_id(&"é".repeat(100))
        .unwrap_err()
        .to_string()
        .contains("ASCII"));
}

#[test]
fn errors_name_value_and_rule() {
    let err = naming::validate_task_id("a b").unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid task id \"a b\": a task id must not contain whitespace"
    );
}

#[test]
fn registry_with_port_and_path() {
    let n = Naming::new("registry.example:5000/team", "2026.1");
    assert_eq!(
        n.benchmark("b", Some("T")),
        "registry.example:5000/team/benchmarks/b-t:2026.1"
    );
}

#[test]
fn targets_round_trip() {
    for (kind, name, target) in [
        (Kind::Core, "base", "core-base"),
        (
            Kind::Benchmark,
            "metric-backfill",
            "benchmark-metric-backfill",
        ),
        (Kind::Agent, "null", "agent-null"),
    ] {
        assert_eq!(naming::parse_target(target), Some((kind, name)));
    }
    assert_eq!(
        naming::parse_target("core-eval"),
        Some((Kind::Eval, "eval"))
    );
    assert_eq!(naming::parse_target("benchmark-"), None);
    assert_eq!(naming::parse_target("other"), None);
}

#[test]
fn fleet_names() {
    assert!(naming::validate_fleet_name("agent name", "null").is_ok());
    for bad in ["Null", "a--b", "-a", "a-", "a_b", ""] {
        assert!(
            naming::validate_fleet_name("agent name", bad).is_err(),
            "{bad}"
        );
    }
}
