package main

import (
	"errors"
	"flag"
	"io"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/seek-api/seek-operator/internal/images"
)

func specNames(specs []images.Spec) []string {
	var names []string
	for _, s := range specs {
		names = append(names, s.Name)
	}
	return names
}

func TestParseArgsDefaults(t *testing.T) {
	o, err := parseArgs([]string{"-out", "/tmp/x"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.out != "/tmp/x" || o.module != "." || o.registry != "seek.local/seek-operator" || o.tag != "dev" ||
		o.goarch != runtime.GOARCH || o.pauseRef != images.DefaultPauseRef || !o.pause || o.verbose {
		t.Errorf("defaults: %+v", o)
	}
	if diff := cmp.Diff(specNames(images.DefaultSpecs), specNames(o.specs)); diff != "" {
		t.Errorf("specs (-want +got):\n%s", diff)
	}
}

func TestParseArgsNamesAndFlags(t *testing.T) {
	o, err := parseArgs([]string{
		"-out", "d", "-registry", "localhost:5000/seek", "-tag", "v1.2.3", "-goarch", "arm64",
		"-pause-ref", "seek.local/pause:9", "-pause=false", "-ca-certs", "", "-module", "/src", "-v",
		"sleep", "echo", "sleep",
	}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := options{
		out: "d", module: "/src", registry: "localhost:5000/seek", tag: "v1.2.3", goarch: "arm64",
		pauseRef: "seek.local/pause:9", pause: false, caCerts: "", verbose: true,
	}
	if diff := cmp.Diff(want, o, cmp.AllowUnexported(options{}), cmpopts.IgnoreFields(options{}, "specs")); diff != "" {
		t.Errorf("options (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"sleep", "echo"}, specNames(o.specs)); diff != "" {
		t.Errorf("specs, in the order named, once each (-want +got):\n%s", diff)
	}
}

func TestParseArgsPauseByName(t *testing.T) {
	o, err := parseArgs([]string{"-out", "d", "-pause=false", "pause"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !o.pause || len(o.specs) != 0 {
		t.Errorf("pause %v, specs %v; want only the pause image", o.pause, specNames(o.specs))
	}
}

func TestParseArgsErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{}, "-out is required"},
		{[]string{"-out", "d", "-tag", "latest"}, "latest"},
		{[]string{"-out", "d", "-tag", ""}, "latest"},
		{[]string{"-out", "d", "nope"}, `unknown image "nope"`},
		{[]string{"-out", "d", "echo", "-tag", "x"}, `unknown image "-tag"`},
		{[]string{"-bogus"}, "flag provided but not defined"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			_, err := parseArgs(tc.args, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestParseArgsHelp(t *testing.T) {
	var usage strings.Builder
	_, err := parseArgs([]string{"-h"}, &usage)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("err = %v, want flag.ErrHelp", err)
	}
	for _, s := range []string{"-out", "-registry", "email-validator", "pause", "ctr -n k8s.io images import"} {
		if !strings.Contains(usage.String(), s) {
			t.Errorf("usage lacks %q:\n%s", s, usage.String())
		}
	}
}
