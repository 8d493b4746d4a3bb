// Command sleep is a Seek worker for testing timeouts, cancelation and retries: it sleeps, then
// succeeds or fails with a chosen exit code. Input: {"seconds": N, "exit_code": C}, N from 0 to 3600
// (fractions allowed) and C optional, 0 to 255. Result: {"slept_seconds": N}. It reports its progress
// every second ("slept 3s of 10s"; pooled mode passes it on). A SIGTERM (the job was
// canceled or timed out) ends the sleep at once, so the pod stops promptly.
package main

import "github.com/seek-api/seek-operator/pkg/worker"

func main() {
	worker.Run(sleeper{wait: wait}.handle)
}
