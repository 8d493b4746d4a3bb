package jobcmd

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestConnectionPrecedence(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "seek"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "seek", "config.yaml"), []byte("url: https://file.example\napi_key: file-key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "other.yaml")
	if err := os.WriteFile(other, []byte("url: https://other.example\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	conn := func(url, key, config string) *connection {
		return &connection{url: url, apiKey: key, configPath: config, getenv: func(k string) string { return env[k] },
			userConfigDir: func() (string, error) { return dir, nil }}
	}
	cases := []struct {
		name          string
		env           map[string]string
		conn          *connection
		wantURL, want string
	}{
		{"the file alone", nil, conn("", "", ""), "https://file.example", "file-key"},
		{"the environment over the file", map[string]string{EnvURL: "https://env.example"}, conn("", "", ""), "https://env.example", "file-key"},
		{"flags over the environment", map[string]string{EnvURL: "https://env.example", EnvAPIKey: "env-key"}, conn("https://flag.example", "", ""), "https://flag.example", "env-key"},
		{"--config names another file", nil, conn("", "flag-key", other), "https://other.example", "flag-key"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env = tc.env
			got, err := tc.conn.resolve()
			if err != nil || got.URL != tc.wantURL || got.APIKey != tc.want {
				t.Errorf("resolve = %+v, %v; want %s with %s", got, err, tc.wantURL, tc.want)
			}
		})
	}

	env = nil
	empty := t.TempDir()
	c := &connection{getenv: func(string) string { return "" }, userConfigDir: func() (string, error) { return empty, nil }}
	if _, err := c.resolve(); err == nil || !strings.Contains(err.Error(), "no API URL") {
		t.Errorf("nothing anywhere: %v", err)
	}
	c.configPath = filepath.Join(empty, "missing.yaml")
	if _, err := c.resolve(); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a missing --config file: %v", err)
	}
	if err := os.WriteFile(c.configPath, []byte("url: x\napikey: typo\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := c.resolve(); err == nil || !strings.Contains(err.Error(), "apikey") {
		t.Errorf("an unknown field: %v", err)
	}
}
