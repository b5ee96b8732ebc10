#!/bin/sh
# Runs the job twice more, as the agent's user, with only POSTGRES_URL: the table
# must come out correct and identical both times.
. "$GRADING_DIR/lib.sh"
require_target
script="$WORKSPACE/$BACKFILL_SCRIPT"
[ -f "$script" ] || fail "$BACKFILL_SCRIPT does not exist"
before=$(fingerprint)
for run in 1 2; do
  if ! out=$(cd "$WORKSPACE" && timeout 120 setpriv --reuid=1000 --regid=1000 --clear-groups \
      env -i PATH=/usr/local/bin:/usr/bin:/bin HOME=/tmp WORKSPACE="$WORKSPACE" POSTGRES_URL="$POSTGRES_URL" \
      sh "$script" 2>&1); then
    fail "re-run $run of $BACKFILL_SCRIPT failed: $(echo "$out" | tail -n 5)"
  fi
  after=$(fingerprint)
  [ "$after" = "$before" ] || fail "re-run $run changed $TARGET (rows:fingerprint $before -> $after)"
done
