#!/bin/sh
. "$GRADING_DIR/lib.sh"
require_target
dups=$(q "select count(*) from (select $KEY_COLUMNS from $TARGET group by $KEY_COLUMNS having count(*) > 1) d")
[ "$dups" = 0 ] || fail "$dups keys appear more than once in $TARGET"
