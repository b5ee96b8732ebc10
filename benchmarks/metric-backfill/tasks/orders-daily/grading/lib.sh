# Sourced by every check of this task (checks/<gate>/<id>.sh). A check passes by
# exiting 0; otherwise its message is what it printed on stderr (the runner's
# exit-code protocol). Everything here is POSIX sh and psql: nothing to install.
set -eu
. "${GRADING_DATA:?GRADING_DATA is not set}/config.sh"
# Graders connect as the superuser, so an agent that revoked or dropped things is still seen.
DB_URL="postgresql://postgres@127.0.0.1:5432/metrics"

# q SQL: prints the rows of one query, unaligned; a query error fails the check.
q() {
  psql -X -q -At -v ON_ERROR_STOP=1 "$DB_URL" -c "$1"
}

fail() {
  echo "$*" >&2
  exit 1
}

# relation_exists NAME: whether NAME (schema.table) exists.
relation_exists() {
  [ "$(q "select to_regclass('$1') is not null")" = t ]
}

require_target() {
  relation_exists "$TARGET" || fail "$TARGET does not exist"
}

# fingerprint: md5 of the target's rows in a canonical order (duplicates included).
fingerprint() {
  q "select count(*) || ':' || coalesce(md5(string_agg(r::text, '|' order by r::text)), '') from (select $KEY_COLUMNS, $VALUE_COLUMNS from $TARGET) r"
}
