// Command echo is a Seek worker that returns its input: {"message": "hello"} becomes
// {"echo": "hello", "job": "<job name>"}. An input that is not an object with a string "message" is
// returned whole under "echo". It is the worker of config/samples/seek-api.com_v1alpha1_seekworker.yaml.
package main

import "github.com/seek-api/seek-operator/pkg/worker"

func main() {
	worker.Run(echo)
}
