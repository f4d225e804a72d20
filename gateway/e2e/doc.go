// Package e2e holds the browser end-to-end tests: a real all-in-one process
// on the embedded backends, and Debian's chromium driven headless through
// chromedp over the buyer's sale page and the live dashboard.
//
// The tests skip when chromium is not installed and fail under CI=true
// (.ci/run installs it). Screenshots are kept in SECKILL_E2E_ARTIFACTS
// (default: a seckill-e2e directory under the system temp directory); the
// test log names each file. SECKILL_E2E_CHROME overrides the browser binary.
package e2e
