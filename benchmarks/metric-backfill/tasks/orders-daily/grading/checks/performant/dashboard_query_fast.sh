#!/bin/sh
# The dashboard's query: the median of five timed runs must be under 200 ms.
. "$GRADING_DIR/lib.sh"
require_target
times=$(psql -X -q -At -v ON_ERROR_STOP=1 "$DB_URL" <<SQL
create temporary table t (ms float8);
do \$\$
declare s timestamptz; i int;
begin
  for i in 1..5 loop
    s := clock_timestamp();
    perform count(*) from ($DASHBOARD_SQL) d;
    insert into t values (extract(epoch from clock_timestamp() - s) * 1000);
  end loop;
end \$\$;
select round(percentile_cont(0.5) within group (order by ms)::numeric, 2) from t;
SQL
)
awk -v ms="$times" 'BEGIN { exit !(ms < 200) }' || fail "median dashboard query time ${times} ms (limit 200 ms)"
echo "median ${times} ms" >&2
