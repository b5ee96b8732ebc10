#!/bin/sh
# On-call documentation: a README in the workspace that says how to re-run the job.
. "$GRADING_DIR/lib.sh"
readme=$(ls "$WORKSPACE" | grep -iE '^readme(\.md|\.txt)?$' | head -n 1 || true)
[ -n "$readme" ] || fail "no README in $WORKSPACE"
grep -q "$(basename "$BACKFILL_SCRIPT")" "$WORKSPACE/$readme" || fail "$readme does not mention $(basename "$BACKFILL_SCRIPT")"
