package main

import (
	"bytes"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/flashsale/seckill/gateway/config"
	"github.com/flashsale/seckill/notifier/delivery"
	"github.com/flashsale/seckill/order/service"
	"github.com/flashsale/seckill/platform/env"
)

const referenceFile = "../../../docs/configuration.md"

const regenerate = "regenerate it from the repository root: go generate ./gateway/config"

// The committed reference is what the code's reads render today.
func TestReferenceIsCurrent(t *testing.T) {
	want, err := render(programs())
	if err != nil {
		t.Fatalf("the reference cannot be generated:\n%v", err)
	}
	got, err := os.ReadFile(referenceFile)
	if err != nil {
		t.Fatalf("%v; %s", err, regenerate)
	}
	if !bytes.Equal(got, want) {
		gl, wl := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
		i := 0
		for i < len(gl) && i < len(wl) && gl[i] == wl[i] {
			i++
		}
		line := func(l []string) string {
			if i < len(l) {
				return l[i]
			}
			return "(end of file)"
		}
		t.Fatalf("docs/configuration.md differs from the settings the code reads, first at line %d:\n  file: %s\n  code: %s\n%s",
			i+1, line(gl), line(wl), regenerate)
	}
}

// Every setting any binary reads carries a description.
func TestEverySettingIsDescribed(t *testing.T) {
	for _, p := range programs() {
		if len(p.Settings) == 0 {
			t.Errorf("the %s reads no settings: its loader is not described", p.Label)
		}
		for _, s := range p.Settings {
			if strings.TrimSpace(s.Doc) == "" {
				t.Errorf("%s is read by the %s without a description", s.Name, p.Label)
			}
		}
	}
}

// Every name a loader's Names lists (the deploy files are checked against
// them) has its row.
func TestNamesAreInTheReference(t *testing.T) {
	doc, err := os.ReadFile(referenceFile)
	if err != nil {
		t.Fatal(err)
	}
	for list, names := range map[string][]string{
		"gateway/config.Names":                 config.Names(),
		"order/service.Names":                  service.Names(),
		"notifier/delivery.ProcessNames":       delivery.ProcessNames(),
		"notifier/delivery.Names (all-in-one)": delivery.Names(),
	} {
		if len(names) == 0 {
			t.Errorf("%s is empty", list)
		}
		for _, n := range names {
			if !bytes.Contains(doc, []byte("| `"+n+"` |")) {
				t.Errorf("%s lists %s, which has no row in docs/configuration.md; %s", list, n, regenerate)
			}
		}
	}
}

// A read without a description, and one name read two ways, stop the
// generator with a message naming the variable and the programs.
func TestRenderRefuses(t *testing.T) {
	prog := func(label string, read func(r *env.Reader)) program {
		return program{Label: label, Binaries: "`" + label + "`", Settings: env.Describe(read)}
	}
	described := func(r *env.Reader) { r.Duration("X_TIMEOUT", time.Second, "how long") }
	for _, tc := range []struct {
		name  string
		progs []program
		want  []string // substrings of the error; none = it renders
	}{
		{"described once", []program{prog("a", described)}, nil},
		{"described alike twice", []program{prog("a", described), prog("b", described)}, nil},
		{"no description", []program{prog("a", func(r *env.Reader) { r.PositiveInt("X_COUNT", 3, "") })},
			[]string{"X_COUNT is read by the a without a description"}},
		{"only checked", []program{prog("a", func(r *env.Reader) { r.IsSet("X_FLAG") })},
			[]string{"X_FLAG is read by the a without a description"}},
		{"another default", []program{prog("a", described), prog("b", func(r *env.Reader) { r.Duration("X_TIMEOUT", time.Minute, "how long") })},
			[]string{"X_TIMEOUT", "the a and the b", `default ("1s", "1m")`}},
		{"another description", []program{prog("a", described), prog("b", func(r *env.Reader) { r.Duration("X_TIMEOUT", time.Second, "how long, in b") })},
			[]string{"X_TIMEOUT", "description"}},
		{"another kind", []program{prog("a", described), prog("b", func(r *env.Reader) { r.String("X_TIMEOUT", "1s", "how long") })},
			[]string{"X_TIMEOUT", "kind (duration, text)"}},
		{"other values", []program{
			prog("a", func(r *env.Reader) { r.OneOf("X_MODE", "p", []string{"p", "q"}, "mode") }),
			prog("b", func(r *env.Reader) { r.OneOf("X_MODE", "p", []string{"p"}, "mode") })},
			[]string{"X_MODE", "list of values"}},
		{"words against a value", []program{
			prog("a", func(r *env.Reader) { r.DefaultText("3").PositiveInt("X_N", 3, "n") }),
			prog("b", func(r *env.Reader) { r.PositiveInt("X_N", 3, "n") })},
			[]string{"X_N", "default"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := render(tc.progs)
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("render: %v", err)
				}
				if !bytes.Contains(out, []byte("| `X_TIMEOUT` | duration > 0 | `1s` | how long |")) {
					t.Fatalf("no row for X_TIMEOUT in:\n%s", out)
				}
				return
			}
			if err == nil {
				t.Fatalf("rendered, want an error saying %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

// Readers are grouped by who reads them, named from the programs.
func TestSections(t *testing.T) {
	read := func(names ...string) program {
		return program{Label: strings.Join(names, "+"), Settings: env.Describe(func(r *env.Reader) {
			for _, n := range names {
				r.String(n, "", "d")
			}
		})}
	}
	out, err := render([]program{read("X_ALL", "X_AB", "X_A"), read("X_ALL", "X_AB"), read("X_ALL")})
	if err != nil {
		t.Fatal(err)
	}
	doc := string(out)
	for _, want := range []string{"## Every process\n", "## The order pipeline", "## The gateway (and the all-in-one)\n"} {
		if !strings.Contains(doc, want) {
			t.Errorf("no section %q", want)
		}
	}
	// Most readers first.
	if a, b, c := strings.Index(doc, "`X_ALL`"), strings.Index(doc, "`X_AB`"), strings.Index(doc, "`X_A`"); !(a < b && b < c) {
		t.Errorf("rows out of order: X_ALL at %d, X_AB at %d, X_A at %d", a, b, c)
	}
}

func TestText(t *testing.T) {
	for in, want := range map[string]string{
		"plain":                               "plain",
		"a | b":                               `a \| b`,
		"Name <addr>":                         "Name &lt;addr&gt;",
		"sender, `Name <addr>`":               "sender, `Name <addr>`",
		"`a|b` or c":                          "`a\\|b` or c",
		"see SECKILL_PUBLISH_TIMEOUT, and 2s": "see `SECKILL_PUBLISH_TIMEOUT`, and 2s",
		"`SECKILL_MQ=nats` only":              "`SECKILL_MQ=nats` only",
		"OTEL_EXPORTER_OTLP_ENDPOINT unset":   "`OTEL_EXPORTER_OTLP_ENDPOINT` unset",
	} {
		if got := text(in); got != want {
			t.Errorf("text(%q) = %q, want %q", in, got, want)
		}
	}
}

// Every table row of the reference has exactly its four cells: no
// description or default breaks out of its cell.
func TestRowsKeepTheirCells(t *testing.T) {
	out, err := render(programs())
	if err != nil {
		t.Fatal(err)
	}
	unescaped := regexp.MustCompile(`(^|[^\\])\|`)
	for i, l := range strings.Split(string(out), "\n") {
		if !strings.HasPrefix(l, "| `") {
			continue
		}
		if n := len(unescaped.FindAllStringIndex(l, -1)); n != 5 {
			t.Errorf("line %d has %d cell borders, want 5: %s", i+1, n, l)
		}
	}
	if !strings.Contains(string(out), fmt.Sprintf("| `%s` |", "SECKILL_HTTP_ADDR")) {
		t.Error("no row for SECKILL_HTTP_ADDR")
	}
}
