#!/bin/sh
# Reward test for count-lines: 1.0 when line_counts.tsv is exactly right; otherwise
# the share of expected lines it gets right, at most 0.9. Writes $GRADER_OUT/reward.txt.
set -u
want="$GRADING_DATA/expected.tsv"
got="$WORKSPACE/line_counts.tsv"
reward() { echo "$1" > "$GRADER_OUT/reward.txt"; echo "reward $1: $2"; exit 0; }
[ -f "$got" ] || reward 0 "line_counts.tsv does not exist"
if cmp -s "$want" "$got"; then reward 1 "exact match"; fi
total=$(wc -l < "$want")
LC_ALL=C sort "$want" > "$GRADER_OUT/want.sorted"
right=$(LC_ALL=C sort "$got" | LC_ALL=C comm -12 - "$GRADER_OUT/want.sorted" | wc -l)
diff "$want" "$got" | head -n 20
reward "$(awk -v r="$right" -v t="$total" 'BEGIN { v = r / t * 0.9; printf "%.4f", v }')" "$right of $total lines right"
