#!/bin/sh
# Per-day reads of the source can use an index: one whose first column is the time column.
. "$GRADING_DIR/lib.sh"
n=$(q "select count(*) from pg_index i join pg_attribute a on a.attrelid = i.indrelid and a.attnum = i.indkey[0]
       where i.indrelid = '$SOURCE_TABLE'::regclass and a.attname = '$SOURCE_TIME_COLUMN'")
[ "$n" -gt 0 ] || fail "no index on $SOURCE_TABLE leads with $SOURCE_TIME_COLUMN"
