#!/usr/bin/env bash
# ticking.sh WHAT COMMAND...: run COMMAND; while it runs, print "  ... still WHAT (N s)" every 20 s,
# so a long silent step (pip unpacking a hundred packages) never leaves the terminal quiet for long.
# Its exit status is COMMAND's.
what=$1
shift
started=$SECONDS
( while sleep 20; do echo "  ... still $what ($((SECONDS - started)) s)"; done ) &
ticker=$!
"$@"
status=$?
kill "$ticker" 2>/dev/null
wait "$ticker" 2>/dev/null
exit "$status"
