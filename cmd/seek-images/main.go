// Command seek-images builds Seek's container images, with no Docker and no registry, as
// docker-archive tarballs that a containerd node imports with `ctr -n k8s.io images import FILE`:
//
//	go run ./cmd/seek-images -out bin/images [-registry seek.local/seek-operator] [-tag dev] [names...]
//
// It builds the images of internal/images.DefaultSpecs (manager, frontend, runner and the sample workers),
// or only the named ones, and the pod sandbox (pause) image, and prints one "<ref>\t<tarball>" line
// per image. Unchanged images are not rewritten. Run it from the module's root, or pass -module.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strings"
	"syscall"

	"github.com/seek-api/seek-operator/internal/images"
)

func main() {
	opts, err := parseArgs(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "seek-images:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, opts, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "seek-images:", err)
		os.Exit(1)
	}
}

// options are the parsed command line.
type options struct {
	out      string
	module   string
	registry string
	tag      string
	goarch   string
	pauseRef string
	pause    bool
	caCerts  string
	verbose  bool
	// specs are the images to build, in order.
	specs []images.Spec
}

// parseArgs parses the command line (without the program name). Usage and flag errors go to
// stderr; -h returns flag.ErrHelp.
func parseArgs(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("seek-images", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: seek-images -out DIR [flags] [names...]\n\n"+
			"Builds the images named (default: all of %s) and the pause image as docker-archive\n"+
			"tarballs in DIR, and prints \"<ref>\\t<tarball>\" per image. Import one into a containerd node\n"+
			"with: ctr -n k8s.io images import <tarball>. Flags go before the names.\n\nFlags:\n",
			strings.Join(knownNames(), ", "))
		fs.PrintDefaults()
	}
	fs.StringVar(&o.out, "out", "", "directory of the tarballs and binaries (required); unchanged images there are not rewritten")
	fs.StringVar(&o.module, "module", ".", "root directory of the seek-operator module")
	fs.StringVar(&o.registry, "registry", "seek.local/seek-operator", "repository prefix of the images; its first component must be a host name")
	fs.StringVar(&o.tag, "tag", "dev", "tag of the images (not latest)")
	fs.StringVar(&o.goarch, "goarch", runtime.GOARCH, "target architecture (the node's)")
	fs.StringVar(&o.pauseRef, "pause-ref", images.DefaultPauseRef, "reference of the pod sandbox (pause) image")
	fs.BoolVar(&o.pause, "pause", true, "build the pause image too")
	fs.StringVar(&o.caCerts, "ca-certs", images.SystemCACertFile(), "PEM bundle of trusted CAs installed in the images as /etc/ssl/certs/ca-certificates.crt; empty installs none")
	fs.BoolVar(&o.verbose, "v", false, "report progress on stderr")
	if err := fs.Parse(args); err != nil {
		return options{}, err
	}
	if o.out == "" {
		fs.Usage()
		return options{}, errors.New("-out is required")
	}
	if o.tag == "" || o.tag == "latest" {
		return options{}, fmt.Errorf("-tag %q: want a tag other than latest", o.tag)
	}
	specs, pause, err := selectSpecs(fs.Args())
	if err != nil {
		return options{}, err
	}
	o.specs = specs
	o.pause = o.pause || pause
	return o, nil
}

// selectSpecs returns the DefaultSpecs named, in the order given, or all of them if none is named,
// and whether "pause" was named.
func selectSpecs(names []string) (specs []images.Spec, pause bool, err error) {
	if len(names) == 0 {
		return slices.Clone(images.DefaultSpecs), false, nil
	}
	for _, n := range names {
		if n == "pause" {
			pause = true
			continue
		}
		i := slices.IndexFunc(images.DefaultSpecs, func(s images.Spec) bool { return s.Name == n })
		if i < 0 {
			return nil, false, fmt.Errorf("unknown image %q: want one of %s", n, strings.Join(knownNames(), ", "))
		}
		if !slices.ContainsFunc(specs, func(s images.Spec) bool { return s.Name == n }) {
			specs = append(specs, images.DefaultSpecs[i])
		}
	}
	return specs, pause, nil
}

// knownNames are the names selectSpecs accepts.
func knownNames() []string {
	var names []string
	for _, s := range images.DefaultSpecs {
		names = append(names, s.Name)
	}
	return append(names, "pause")
}

// run builds the images of o and prints "<ref>\t<tarball>" for each to stdout.
func run(ctx context.Context, o options, stdout, stderr io.Writer) error {
	b := &images.Builder{
		ModuleDir:  o.module,
		Registry:   o.registry,
		Tag:        o.tag,
		GOARCH:     o.goarch,
		CacheDir:   o.out,
		PauseRef:   o.pauseRef,
		CACertFile: o.caCerts,
	}
	if o.verbose {
		b.Logf = func(format string, args ...any) { fmt.Fprintf(stderr, format+"\n", args...) }
	}
	results, err := b.BuildAll(ctx, o.specs)
	for _, r := range results {
		fmt.Fprintf(stdout, "%s\t%s\n", r.Ref, r.Tarball)
	}
	if err != nil {
		return err
	}
	if o.pause {
		ref, path, err := b.Pause(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s\t%s\n", ref, path)
	}
	return nil
}
