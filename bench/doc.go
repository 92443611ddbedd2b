// Package bench holds benchmarks that compare latch with its peers in one
// run. See docs/benchmarks.md for the commands and the figures.
package bench
