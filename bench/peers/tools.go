//go:build tools

// Package peers pins the peer programs bench/peers/run.sh builds and
// runs beside latch's helpers, in a module of its own so that latch's
// go.mod never depends on them.
package peers

import _ "github.com/awslabs/amazon-ecr-credential-helper/ecr-login/cli/docker-credential-ecr-login"
