#!/bin/sh
. "$GRADING_DIR/lib.sh"
require_target
n=$(q "select count(*) from $TARGET")
[ "$n" -gt 0 ] || fail "$TARGET is empty"
