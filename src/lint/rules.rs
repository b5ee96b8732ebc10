//! The rule ids `kiln lint` reports, one per finding (`--json`'s `rule`). The task-quality
//! rules keep Harbor's names where the rule is the same; kiln's fleet rules are `kiln-*`
//! (RULES.md), the eval-containers fleet's own rules `eval-containers-*`.

// kiln's fleet rules (RULES.md).
/// Directories, bake files, target definitions, task directories and ids, names.
pub const KILN_LAYOUT: &str = "kiln-layout";
/// The label contract.
pub const KILN_LABELS: &str = "kiln-labels";
/// Image tags.
pub const KILN_TAGS: &str = "kiln-tags";
/// In-fleet images declared as `target:` contexts.
pub const KILN_CONTEXTS: &str = "kiln-contexts";
/// The root file's groups.
pub const KILN_GROUPS: &str = "kiln-groups";
/// Who may use `EVAL_*` variables.
pub const KILN_VARIABLES: &str = "kiln-variables";
/// Secret-shaped build args, `ARG`s and `ENV`s (any layout).
pub const KILN_SECRETS: &str = "kiln-secrets";

// The eval-containers fleet's own rules.
/// An image directory that does not load.
pub const EC_LAYOUT: &str = "eval-containers-layout";
/// The labels its rules require.
pub const EC_LABELS: &str = "eval-containers-labels";

// Task quality (Harbor 0.26.0's names, and the rubric's model-free criteria).
pub const INVALID_TASK_CONFIG: &str = "invalid-task-config";
pub const UNKNOWN_CONFIG_FIELD: &str = "unknown-config-field";
pub const INVALID_TASK_FILES: &str = "invalid-task-files";
pub const UNPINNED_IMAGE: &str = "unpinned-image";
pub const UNPINNED_PYTHON_DEPENDENCY: &str = "unpinned-python-dependency";
pub const VERIFIER_RUNTIME_INSTALL: &str = "verifier-runtime-install";
pub const VERIFIER_NETWORK_DOWNLOAD: &str = "verifier-network-download";
pub const AGENT_IMAGE_TEST_LEAK: &str = "agent-image-test-leak";
pub const ROOT_AGENT: &str = "root-agent";
pub const FILE_REFERENCE_MENTIONED: &str = "file-reference-mentioned";
pub const MISSING_TIMEOUT: &str = "missing-timeout";

/// Every rule id, for `kiln lint --ignore`.
pub const ALL: &[&str] = &[
    KILN_LAYOUT,
    KILN_LABELS,
    KILN_TAGS,
    KILN_CONTEXTS,
    KILN_GROUPS,
    KILN_VARIABLES,
    KILN_SECRETS,
    EC_LAYOUT,
    EC_LABELS,
    INVALID_TASK_CONFIG,
    UNKNOWN_CONFIG_FIELD,
    INVALID_TASK_FILES,
    UNPINNED_IMAGE,
    UNPINNED_PYTHON_DEPENDENCY,
    VERIFIER_RUNTIME_INSTALL,
    VERIFIER_NETWORK_DOWNLOAD,
    AGENT_IMAGE_TEST_LEAK,
    ROOT_AGENT,
    FILE_REFERENCE_MENTIONED,
    MISSING_TIMEOUT,
];

/// The task-quality rules a task may allow (`[metadata] kiln_lint_allow`). The three
/// that leave a task unreadable cannot be allowed: kiln leaves such a task out.
pub const ALLOWABLE: &[&str] = &[
    UNPINNED_IMAGE,
    UNPINNED_PYTHON_DEPENDENCY,
    VERIFIER_RUNTIME_INSTALL,
    VERIFIER_NETWORK_DOWNLOAD,
    AGENT_IMAGE_TEST_LEAK,
    ROOT_AGENT,
    FILE_REFERENCE_MENTIONED,
    MISSING_TIMEOUT,
];

/// The `[metadata]` key listing the rules a task allows.
pub const ALLOW_KEY: &str = "kiln_lint_allow";
