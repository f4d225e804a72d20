package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestCommandLine(t *testing.T) {
	empty := t.TempDir()
	tests := []struct {
		name string
		args []string
		code int
		want string // in stderr
	}{
		{"no command", nil, 2, "usage: cluster COMMAND"},
		{"unknown command", []string{"launch"}, 2, `unknown command "launch"`},
		{"bad flag", []string{"up", "--nope"}, 2, "flag provided but not defined"},
		{"stray argument", []string{"status", "--dir", empty, "now"}, 2, "want 0 argument"},
		{"kill without a name", []string{"kill", "--dir", empty}, 2, "want 1 argument"},
		{"bad --set", []string{"up", "--set", "PATH=/tmp"}, 2, "want SECKILL_NAME=value"},
		{"status of no cluster", []string{"status", "--dir", empty}, 1, "no cluster state in " + empty},
		{"env of no cluster", []string{"env", "--dir", empty}, 1, "make cluster-up"},
		{"down of no cluster", []string{"down", "--dir", empty}, 0, "no cluster state"},
		{"bad queue sync", []string{"up", "--dir", empty, "--queue-sync", "sometimes"}, 1, `queue sync "sometimes"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(context.Background(), tt.args, &out, &errb)
			if code != tt.code || !strings.Contains(errb.String(), tt.want) {
				t.Fatalf("run(%q) = %d, stderr %q; want %d and %q", tt.args, code, errb.String(), tt.code, tt.want)
			}
			if out.Len() != 0 {
				t.Errorf("stdout %q: errors go to stderr, stdout is for eval", out.String())
			}
		})
	}
}
