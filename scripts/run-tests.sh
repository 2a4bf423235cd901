#!/usr/bin/env bash
# Runs the built test suite (`make test` calls it after building). When the test process was
# killed by one of two assertions of librdkafka 2.0.2's mock cluster, the suite runs once more.
# Any other failure fails at once. The two (each aborts the whole process, not one test):
# - rd_kafka_mock_cgrp_member_add: the mock can reuse a freed member's id;
# - rd_kafka_mock_broker_cmd: taking a broker down closes its listener and binds a new one to
#   the same port at once, asserting that the bind worked (it failed once, in a fresh-clone
#   run of the whole suite, with hundreds of sockets opening around it).
#
# "The test process was killed" means: the assertion line names the test process (`….xctest:`,
# not a child such as `assay dev-broker`, whose death the chaos test reports and survives), and
# swift-testing never printed its closing "Test run with …" line. A run that finished and
# failed is a failure, whatever its output mentions.
set -uo pipefail
swift="${SWIFT:-swift}"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
"$swift" test --skip-build "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
abort_line='^[^[:space:]:]*\.xctest: (rdkafka_mock_cgrp\.c:[0-9]+: rd_kafka_mock_cgrp_member_add|rdkafka_mock\.c:[0-9]+: rd_kafka_mock_broker_cmd): Assertion'
if [ "$status" -ne 0 ] && grep -qE "$abort_line" "$log" && ! grep -qE '^[^[:space:]]+ Test run with [0-9]+ tests? ' "$log"; then
  echo "run-tests: librdkafka's mock cluster aborted the test process ($(grep -oE 'rd_kafka_mock_[a-z_]+: Assertion' "$log" | head -1)); running the suite once more" >&2
  "$swift" test --skip-build "$@"
  status=$?
fi
exit "$status"
