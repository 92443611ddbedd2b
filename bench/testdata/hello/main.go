// Command hello is the floor for start-up: a Go binary that prints a line.
package main

import "fmt"

func main() { fmt.Println("hello") }
