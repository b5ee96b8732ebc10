#!/bin/sh
# The failed run's staging table is gone (or at least empty).
. "$GRADING_DIR/lib.sh"
if relation_exists "$STAGING_TABLE"; then
  n=$(q "select count(*) from $STAGING_TABLE")
  [ "$n" = 0 ] || fail "$STAGING_TABLE still holds $n rows of the failed run"
fi
