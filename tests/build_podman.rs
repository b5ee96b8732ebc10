//! Real builds with `podman build`, into podman's store (KILN_TEST_PODMAN=1).

mod backend_support;

use backend_support::*;
use kiln::backend::BackendKind;

#[test]
fn podman_builds_labels_and_rebuilds_only_what_changed() {
    if !gate("KILN_TEST_PODMAN") {
        return;
    }
    exercise(BackendKind::Podman, "podman-cycle");
}
