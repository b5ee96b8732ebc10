#!/bin/sh
# The job names its columns: `select *` breaks silently when a table gains a column.
. "$GRADING_DIR/lib.sh"
dir=$(dirname "$WORKSPACE/$BACKFILL_SCRIPT")
[ -d "$dir" ] || fail "$dir does not exist"
hits=$(grep -rniE 'select[[:space:]]+\*' "$dir" || true)
[ -z "$hits" ] || fail "select * in the job: $hits"
