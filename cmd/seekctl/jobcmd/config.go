// Package jobcmd holds seekctl's job commands: submit, get, list, wait, cancel, workers and batch.
// They speak the REST API through the Go SDK (pkg/client) with an API key, and need no kubeconfig.
//
// The API's URL and key come from, in this order of precedence: the flags --url and --api-key, the
// environment variables SEEK_API_URL and SEEK_API_KEY, and the config file (--config, else
// $XDG_CONFIG_HOME/seek/config.yaml, else ~/.config/seek/config.yaml):
//
//	url: https://seek.example.com
//	api_key: seek_...
package jobcmd

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/seek-api/seek-operator/pkg/client"
)

// Environment variables read when the flags are not given.
const (
	EnvURL    = "SEEK_API_URL"
	EnvAPIKey = "SEEK_API_KEY"
)

// maxConfigBytes bounds the config file.
const maxConfigBytes = 64 << 10

// Config is the config file's content.
type Config struct {
	// URL is the REST API's base URL.
	URL string `json:"url"`
	// APIKey is the API key requests are made with.
	APIKey string `json:"api_key"`
}

// connection holds the flags that say where the API is; client resolves them.
type connection struct {
	url, apiKey, configPath string
	// getenv and userConfigDir are os.Getenv and os.UserConfigDir but in tests.
	getenv        func(string) string
	userConfigDir func() (string, error)
}

func (c *connection) addFlags(cmd *cobra.Command) {
	f := cmd.PersistentFlags()
	f.StringVar(&c.url, "url", "", "Base URL of the Seek REST API (default $"+EnvURL+", then the config file).")
	f.StringVar(&c.apiKey, "api-key", "", "API key (default $"+EnvAPIKey+", then the config file).")
	f.StringVar(&c.configPath, "config", "", "Config file with url and api_key (default $XDG_CONFIG_HOME/seek/config.yaml).")
}

// resolve returns the URL and key: flags first, then the environment, then the config file. The
// file is read only when something is still missing, and a missing default file is no error.
func (c *connection) resolve() (Config, error) {
	out := Config{URL: c.url, APIKey: c.apiKey}
	if out.URL == "" {
		out.URL = c.getenv(EnvURL)
	}
	if out.APIKey == "" {
		out.APIKey = c.getenv(EnvAPIKey)
	}
	if out.URL != "" && out.APIKey != "" {
		return out, nil
	}
	path, explicit := c.configPath, c.configPath != ""
	if !explicit {
		dir, err := c.userConfigDir() // $XDG_CONFIG_HOME, else ~/.config
		if err != nil {
			return out, missing(out)
		}
		path = filepath.Join(dir, "seek", "config.yaml")
	}
	file, err := readConfig(path)
	if errors.Is(err, fs.ErrNotExist) && !explicit {
		return out, missing(out)
	}
	if err != nil {
		return out, err
	}
	if out.URL == "" {
		out.URL = file.URL
	}
	if out.APIKey == "" {
		out.APIKey = file.APIKey
	}
	return out, missing(out)
}

func missing(c Config) error {
	switch {
	case c.URL == "":
		return fmt.Errorf("no API URL: pass --url, set %s or url in the config file", EnvURL)
	case c.APIKey == "":
		return fmt.Errorf("no API key: pass --api-key, set %s or api_key in the config file", EnvAPIKey)
	}
	return nil
}

func readConfig(path string) (Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return Config{}, fmt.Errorf("config file: %w", err)
	}
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, maxConfigBytes+1))
	if err != nil {
		return Config{}, fmt.Errorf("config file %s: %w", path, err)
	}
	if len(raw) > maxConfigBytes {
		return Config{}, fmt.Errorf("config file %s is larger than %d bytes", path, maxConfigBytes)
	}
	var cfg Config
	if err := yaml.UnmarshalStrict(raw, &cfg); err != nil {
		return Config{}, fmt.Errorf("config file %s: %w", path, err)
	}
	return cfg, nil
}

// client returns an SDK client for the resolved URL and key.
func (c *connection) client() (*client.Client, error) {
	cfg, err := c.resolve()
	if err != nil {
		return nil, err
	}
	return client.New(cfg.URL, cfg.APIKey, client.WithUserAgent("seekctl/1"), client.WithRetryPolicy(retryPolicy))
}

// retryPolicy is the SDK's default with fewer attempts, so that a wrong URL fails in seconds; batch
// retries on its own, around the SDK's attempts.
var retryPolicy = client.RetryPolicy{MaxAttempts: 4, InitialBackoff: 500 * time.Millisecond, MaxWait: 30 * time.Second}
