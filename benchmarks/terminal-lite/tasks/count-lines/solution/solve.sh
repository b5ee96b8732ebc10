#!/bin/sh
# Reference solution for count-lines: awk counts a final unterminated line, wc -l would not.
set -eu
cd /data/corpus
find . -type f -name '*.txt' | sed 's|^\./||' | LC_ALL=C sort | while IFS= read -r f; do
  printf '%s\t%s\n' "$f" "$(awk 'END { print NR }' "$f")"
done | awk -F '\t' '{ print; total += $2 } END { printf "TOTAL\t%d\n", total }' > "$WORKSPACE/line_counts.tsv"
