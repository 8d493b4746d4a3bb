//go:build !linux

package main

// undumpable does nothing where there is no prctl: pool pods run on Linux.
func undumpable() error { return nil }
