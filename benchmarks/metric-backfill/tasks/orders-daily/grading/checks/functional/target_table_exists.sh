#!/bin/sh
. "$GRADING_DIR/lib.sh"
require_target
