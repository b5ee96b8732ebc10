#!/bin/sh
. "$GRADING_DIR/lib.sh"
got=$(q "$CHECKPOINT_SQL" || true)
want=$(q "$CHECKPOINT_WANT_SQL")
[ "$got" = "$want" ] || fail "checkpoint is '$got', the last loaded key is '$want'"
