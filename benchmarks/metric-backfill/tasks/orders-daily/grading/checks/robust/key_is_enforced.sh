#!/bin/sh
# The database itself refuses a second row per key: a unique index (or primary key)
# on exactly the key columns.
. "$GRADING_DIR/lib.sh"
require_target
want=$(echo "$KEY_COLUMNS" | tr -d ' ' | tr ',' '\n' | sort | paste -sd, -)
n=$(q "select count(*) from pg_index i
       where i.indrelid = '$TARGET'::regclass and i.indisunique and i.indpred is null
         and (select string_agg(a.attname, ',' order by a.attname)
              from unnest(i.indkey) k(attnum) join pg_attribute a on a.attrelid = i.indrelid and a.attnum = k.attnum) = '$want'")
[ "$n" -gt 0 ] || fail "no unique index or primary key on ($KEY_COLUMNS) of $TARGET"
