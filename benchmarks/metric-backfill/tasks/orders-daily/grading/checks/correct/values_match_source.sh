#!/bin/sh
# Every row of the target is a correct row (no stale numbers, no keys the source lacks).
. "$GRADING_DIR/lib.sh"
require_target
wrong=$(q "select count(*) || ' wrong, e.g. ' || coalesce(min(w::text), '') from (select $KEY_COLUMNS, $VALUE_COLUMNS from $TARGET except select $KEY_COLUMNS, $VALUE_COLUMNS from ($EXPECTED_SQL) e) w")
case "$wrong" in 0\ *) ;; *) fail "$wrong" ;; esac
