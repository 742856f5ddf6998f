# Starts the test Postfix master (exec: it keeps this shell's PID, so the test process
# that spawned us holds master itself as its child) and, in a background loop, stops
# it once the test process (argument 1) is gone: statics have no Drop, and master must
# never outlive the tests by more than a few seconds. TERM first, KILL after 5 s.
# Usage: sh watchdog.sh TEST_PID MASTER -c CONFIG_DIR
test_pid=$1
shift
master_pid=$$
(
    # Hang-ups and Ctrl-C are not ours to act on: the test process's exit is.
    trap '' HUP INT
    while kill -0 "$test_pid" 2>/dev/null && kill -0 "$master_pid" 2>/dev/null; do
        sleep 1
    done
    kill -TERM "$master_pid" 2>/dev/null
    n=0
    while kill -0 "$master_pid" 2>/dev/null && [ "$n" -lt 50 ]; do
        sleep 0.1
        n=$((n + 1))
    done
    kill -KILL "$master_pid" 2>/dev/null
) </dev/null &
exec "$@"
