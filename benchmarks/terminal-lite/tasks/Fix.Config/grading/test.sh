#!/bin/sh
# Reward test for Fix.Config: 0.4 when greeterd-check accepts app.conf, plus 0.15
# for each value that kept the operators' intent. Writes $GRADER_OUT/reward.txt.
set -u
conf="$WORKSPACE/app.conf"
score=0
add() { score=$(awk -v s="$score" -v d="$1" 'BEGIN { printf "%.2f", s + d }'); }
# value SECTION KEY: the value of KEY in [SECTION] (last one wins), CRs ignored.
value() {
  awk -v want="$1.$2" '{ sub(/\r$/, "") }
    /^\[[a-z]+\]/ { s = $0; gsub(/[][ \t]/, "", s); next }
    /^[a-z_]+[ \t]*=/ { k = $0; sub(/[ \t]*=.*/, "", k); v = $0; sub(/^[^=]*=[ \t]*/, "", v); sub(/[ \t]+$/, "", v)
                        if (s "." k == want) found = v }
    END { print found }' "$conf"
}
expect() {
  got=$(value "$1" "$2")
  if [ "$got" = "$3" ]; then echo "ok   $1.$2"; add 0.15; else echo "FAIL $1.$2 = '$got', want '$3'"; fi
}
if [ ! -f "$conf" ]; then
  echo "FAIL app.conf is missing"
else
  if greeterd-check "$conf"; then add 0.4; else echo "FAIL greeterd-check rejects app.conf"; fi
  expect server bind 0.0.0.0
  expect server listen_port 8080
  expect server greeting "Welcome to the lobby, please sign in at the desk"
  expect logging level warn
fi
echo "$score" > "$GRADER_OUT/reward.txt"
echo "reward $score"
