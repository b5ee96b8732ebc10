#!/bin/sh
# The job connects through POSTGRES_URL and holds no connection string of its own.
. "$GRADING_DIR/lib.sh"
dir=$(dirname "$WORKSPACE/$BACKFILL_SCRIPT")
grep -rqE 'POSTGRES_URL' "$dir" || fail "the job never reads POSTGRES_URL"
hits=$(grep -rnE 'postgres(ql)?://|host=[^ ]*|password=' "$dir" || true)
[ -z "$hits" ] || fail "hard-coded connection details: $hits"
