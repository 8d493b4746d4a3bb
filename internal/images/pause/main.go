// Command pause is the pod sandbox ("pause") program of the images built by internal/images: it holds
// a pod's namespaces by blocking until it receives SIGTERM or SIGINT, then exits 0. Unlike the
// upstream pause it does not reap zombies; pods here do not share their process namespace.
//
// It is a separate main package so that `go vet ./...` checks it; internal/images embeds this file and
// builds it in a scratch module of its own, independent of the module whose images are built.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	<-sigs
}
