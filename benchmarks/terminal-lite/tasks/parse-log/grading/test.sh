#!/bin/sh
# Reward test for parse-log: half for each report that matches exactly.
# Writes $GRADER_OUT/reward.txt and says why on stdout.
set -u
score=0
for report in status_classes.txt top_5xx_paths.txt; do
  if [ ! -f "$WORKSPACE/$report" ]; then
    echo "FAIL $report: missing"
  elif cmp -s "$GRADING_DATA/$report" "$WORKSPACE/$report"; then
    echo "ok   $report"
    score=$((score + 1))
  else
    echo "FAIL $report differs:"
    diff "$GRADING_DATA/$report" "$WORKSPACE/$report" | head -n 10
  fi
done
awk -v s="$score" 'BEGIN { printf "%.2f\n", s / 2 }' > "$GRADER_OUT/reward.txt"
