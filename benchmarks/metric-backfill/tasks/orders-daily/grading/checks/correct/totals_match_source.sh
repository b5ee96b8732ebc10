#!/bin/sh
# The target's rows add up to the source: catches duplicated keys as well as gaps.
. "$GRADING_DIR/lib.sh"
require_target
got=$(q "select count(*) from $TARGET")
want=$(q "select count(*) from ($EXPECTED_SQL) e")
[ "$got" = "$want" ] || fail "$TARGET has $got rows, the source defines $want"
