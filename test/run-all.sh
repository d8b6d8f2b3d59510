#!/usr/bin/env bash
# Owns: the whole test run behind `npm test`: the test binaries, `tsc --noEmit`, `eslint .`, then the
# jest layers unit, integration, netns, lab, in that order, each in its own jest run.
# Guarantees: every step's time is printed; the exit status is non-zero when anything failed; the
# very last line is always `N passed, N failed` (also on an early exit or an interrupt). Under CI=true
# a skipped or todo test counts as failed. Installs what is missing first (scripts/setup.sh).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

passed=0
failed=0
finished=0
jest_pid=''
hung=0
summary_lines=()
results="$(mktemp -d "${TMPDIR:-/tmp}/smartnat-test-results.XXXXXX")"

log() { printf 'run-all: %s\n' "$*" >&2; }
stop_jest() { if [ -n "$jest_pid" ]; then kill -TERM "$jest_pid" 2>/dev/null; wait "$jest_pid" 2>/dev/null; fi; jest_pid=''; }

on_exit() {
  local rc=$?
  stop_jest
  if [ "$finished" != 1 ]; then
    # Stopped before the end (setup failure, interrupt): that is a failure even if nothing was counted.
    failed=$((failed + 1))
    [ "$rc" -eq 0 ] && rc=1
    summary_lines+=("$(printf '%-12s %s' aborted "the run stopped before all layers ran")")
  fi
  rm -rf "$results"
  printf '%s\n' '' 'run-all: summary' >&2
  printf '  %s\n' "${summary_lines[@]}" >&2
  printf '%d passed, %d failed\n' "$passed" "$failed"
  exit "$rc"
}
trap on_exit EXIT
trap 'log "interrupted"; stop_jest; exit 130' INT TERM

record() { # name, seconds, text
  summary_lines+=("$(printf '%-12s %5d s  %s' "$1" "$2" "$3")")
  log "$1: $3 in $2 s"
}

# One check that is not jest (type check, lint) counts as one test.
check() { # name, command...
  local name="$1" start=$SECONDS
  shift
  log "$name: $*"
  if "$@" >&2; then
    passed=$((passed + 1))
    record "$name" $((SECONDS - start)) "passed"
  else
    failed=$((failed + 1))
    record "$name" $((SECONDS - start)) "FAILED"
  fi
}

# Prints "passed failed skipped runtimeErrorSuites total" from jest's --json output file.
count_jest() {
  node -e '
    const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    const skipped = (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0);
    console.log([r.numPassedTests, r.numFailedTests, skipped, r.numRuntimeErrorTestSuites ?? 0, r.numTotalTests].join(" "));
  ' "$1"
}

# jest writes its results, then waits for the event loop to drain: a test that leaves a process, a
# socket or a timer behind would hang the run. Give it EXIT_GRACE_S seconds after the results, then
# stop it and count one failure (the leak is a bug; --forceExit would hide it).
EXIT_GRACE_S=30
run_jest() { # results file, jest flags...
  local out="$1" after=0
  shift
  hung=0
  rm -f "$out"
  # In the background so the wait can be watched; a non-interactive shell starts background jobs
  # with SIGINT ignored, so the INT/TERM trap forwards a SIGTERM (jest_pid).
  NODE_OPTIONS="${NODE_OPTIONS:+$NODE_OPTIONS }--experimental-vm-modules" \
    node_modules/.bin/jest --json --outputFile="$out" "$@" >&2 &
  jest_pid=$!
  while kill -0 "$jest_pid" 2>/dev/null; do
    if [ -s "$out" ]; then
      after=$((after + 1))
      if [ "$after" -eq "$EXIT_GRACE_S" ]; then
        log "jest has not exited $EXIT_GRACE_S s after writing its results; stopping it"
        hung=1
        kill -TERM "$jest_pid" 2>/dev/null
      elif [ "$after" -eq $((EXIT_GRACE_S + 10)) ]; then
        kill -KILL "$jest_pid" 2>/dev/null
      fi
    fi
    sleep 1
  done
  wait "$jest_pid"
  local rc=$?
  jest_pid=''
  return "$rc"
}

layer() { # project name, extra jest flags...
  local name="$1" start=$SECONDS out="$results/$1.json" rc p=0 f=0 s=0 e=0 total=0 extra_failed=0 text
  shift
  log "layer $name: jest --selectProjects $name $*"
  run_jest "$out" --selectProjects "$name" --passWithNoTests "$@"
  rc=$?
  if [ -s "$out" ] && read -r p f s e total < <(count_jest "$out"); then
    text="$p passed, $f failed, $s skipped"
    [ "$total" -eq 0 ] && text="0 tests (no test files yet)"
    # A suite that could not run (syntax error, failing import) has no tests to count: one failure.
    if [ "$e" -gt 0 ]; then extra_failed=$((extra_failed + e)); text="$text, $e suites failed to run"; fi
  else
    text="jest wrote no results"
  fi
  if [ "${CI:-}" = true ] && [ "$s" -gt 0 ]; then
    extra_failed=$((extra_failed + s))
    text="$text (skipped count as failed under CI)"
  fi
  if [ "$hung" = 1 ]; then
    extra_failed=$((extra_failed + 1))
    text="$text; jest did not exit ${EXIT_GRACE_S} s after its results: a test left something running"
  elif [ "$rc" -ne 0 ] && [ $((f + extra_failed)) -eq 0 ]; then
    # jest failed (global setup or teardown, a crash) but no test says so: still one failure.
    extra_failed=1
    text="$text; jest exited with status $rc"
  fi
  passed=$((passed + p))
  failed=$((failed + f + extra_failed))
  record "$name" $((SECONDS - start)) "$text"
}

start=$SECONDS
log "setup: bash scripts/setup.sh (missing Debian packages, npm ci when node_modules is stale)"
if ! bash scripts/setup.sh; then
  record setup $((SECONDS - start)) "FAILED: scripts/setup.sh"
  exit 1
fi
record setup $((SECONDS - start)) "packages and node modules ready"

start=$SECONDS
log "test binaries: bash test/testenv/build.sh (a cold build takes minutes)"
if ! bin="$(bash test/testenv/build.sh)"; then
  record testenv $((SECONDS - start)) "FAILED: test/testenv/build.sh"
  exit 1
fi
export SMARTNAT_TESTENV_BIN="$bin"
record testenv $((SECONDS - start)) "binaries in $bin"

check typecheck node_modules/.bin/tsc -p tsconfig.json --noEmit
# The lab layer runs the built CLI (dist/): build it from these sources.
check build node_modules/.bin/tsc -p tsconfig.build.json
check lint node_modules/.bin/eslint .

layer unit --maxWorkers=2
# These share kernel and API server state: one test file at a time.
layer integration --runInBand
layer netns --runInBand
layer lab --runInBand

finished=1
[ "$failed" -eq 0 ]
