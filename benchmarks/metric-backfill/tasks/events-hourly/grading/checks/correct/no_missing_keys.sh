#!/bin/sh
# Every key the source has is in the target (no gaps).
. "$GRADING_DIR/lib.sh"
require_target
missing=$(q "select count(*) || ' missing, e.g. ' || coalesce(min(k::text), '') from (select $KEY_COLUMNS from ($EXPECTED_SQL) e except select $KEY_COLUMNS from $TARGET) k")
case "$missing" in 0\ *) ;; *) fail "$missing" ;; esac
