package main

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
)

// Stamped at build time by the release build and the Dockerfile:
//
//	go build -ldflags "-X main.version=v1.2.0 -X main.commit=$(git rev-parse HEAD)" ./cmd/nextbest
//
// A binary built without them (go build, go install) reports what the Go
// toolchain recorded instead: the module version and the VCS revision.
var (
	version string
	commit  string
)

// build is what a binary knows about how it was built.
type build struct {
	Version, Commit, Go string
	Modified            bool // built from a work tree with uncommitted changes
}

// currentBuild returns the stamped version and commit, falling back to
// the build info the Go toolchain embeds.
func currentBuild() build {
	b := build{Version: version, Commit: commit, Go: runtime.Version()}
	if info, ok := debug.ReadBuildInfo(); ok {
		if b.Version == "" && info.Main.Version != "" {
			b.Version = info.Main.Version // "(devel)" for a build in a work tree
		}
		for _, s := range info.Settings {
			switch {
			case s.Key == "vcs.revision" && b.Commit == "":
				b.Commit = s.Value
			case s.Key == "vcs.modified" && commit == "":
				b.Modified = s.Value == "true"
			}
		}
	}
	if b.Version == "" {
		b.Version = "(devel)"
	}
	if b.Commit == "" {
		b.Commit = "unknown"
	}
	return b
}

func (b build) String() string {
	dirty := ""
	if b.Modified {
		dirty = "-dirty"
	}
	return fmt.Sprintf("nextbest %s (commit %s%s, %s)", b.Version, b.Commit, dirty, b.Go)
}

type versionCmd struct{}

func (versionCmd) Run(_ context.Context, e *env) error {
	_, err := fmt.Fprintln(e.stdout, currentBuild())
	return err
}
