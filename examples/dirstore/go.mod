module github.com/latchdev/latch/examples/dirstore

go 1.26.0

require github.com/latchdev/latch v0.0.0

require (
	github.com/gofrs/flock v0.13.2 // indirect
	golang.org/x/oauth2 v0.38.0 // indirect
	golang.org/x/sys v0.50.0 // indirect
)

replace github.com/latchdev/latch => ../..
