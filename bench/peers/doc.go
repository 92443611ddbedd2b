// Package peers pins, in a module of its own (so latch's go.mod never
// depends on them), the peer programs bench/peers/run.sh builds and runs
// beside latch's helpers: see go.mod's tool directive.
package peers
