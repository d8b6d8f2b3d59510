#!/bin/sh
# Redraws docs/img/observability-failover.png from real series: a lab of its own, a real Prometheus
# scraping its agents every second, one `smartnat drill kill`, then Prometheus range data plotted
# (test/observability/dashboard.lab.ts, "a picture from the real series"). Needs root, Debian's
# prometheus package and the Kubernetes test binaries (test/testenv/build.sh); about 90 s.
set -eu
cd "$(dirname "$0")/../.."
npm run build
UPDATE_DOCS_IMG=1 NODE_OPTIONS=--experimental-vm-modules npx jest test/observability/dashboard --selectProjects lab --runInBand
