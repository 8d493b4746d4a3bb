// Command hello is the tiny main package the internal/images tests build into an image.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stdout, "hello from", os.Args[0])
}
