// Command salon is the Salon server: a Matrix homeserver with its own
// conferencing (SFU, TURN, Jitsi bridge) in one binary.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "salon: not yet wired")
	os.Exit(2)
}
