package worker_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/seek-api/seek-operator/pkg/worker"
)

// greet is a handler: {"name": "..."} -> {"greeting": "Hello, ...!"}.
func greet(_ context.Context, job *worker.Job) (any, error) {
	var in struct {
		Name string `json:"name"`
	}
	if err := job.Decode(&in); err != nil {
		return nil, err // Permanent, reason "InvalidInput"
	}
	if in.Name == "" {
		return nil, worker.Permanent("MissingName", errors.New("input.name must be a non-empty string"))
	}
	return map[string]string{"greeting": "Hello, " + in.Name + "!"}, nil
}

func ExampleRun() {
	// In a worker's main function; Run never returns.
	worker.Run(greet)
}

func ExampleExecute() {
	dir, err := os.MkdirTemp("", "worker")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	input, result := filepath.Join(dir, "input.json"), filepath.Join(dir, "result.json")

	for _, in := range []string{`{"name": "Ada"}`, `{"name": ""}`, `{"nom": "Ada"}`} {
		if err := os.WriteFile(input, []byte(in), 0o600); err != nil {
			panic(err)
		}
		code := worker.Execute(context.Background(), greet, worker.Options{
			InputPath:  input,
			ResultPath: result,
			Log:        io.Discard,
		})
		data, _ := os.ReadFile(result)
		fmt.Printf("exit %d: %s\n", code, data)
	}
	// Output:
	// exit 0: {"greeting":"Hello, Ada!"}
	// exit 65: {"message":"input.name must be a non-empty string","reason":"MissingName"}
	// exit 65: {"message":"invalid input: json: unknown field \"nom\"","reason":"InvalidInput"}
}
