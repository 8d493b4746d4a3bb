// Command fail is a Seek worker for testing failures: it fails at once with the exit code, message and
// reason it is given. Input: {"exit_code": C, "message": "...", "reason": "..."}, all optional: C is 1
// to 255 (default 1; 65 is a permanent failure, any other code may be retried), the message defaults to
// "failed as asked" and the reason to "RequestedFailure". An input that is not such an object fails
// permanently with reason "InvalidInput".
package main

import "github.com/seek-api/seek-operator/pkg/worker"

func main() {
	worker.Run(fail)
}
