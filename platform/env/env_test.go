package env_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/flashsale/seckill/platform/env"
)

func from(m map[string]string) *env.Reader {
	return env.New(func(k string) string { return m[k] })
}

// Each getter: unset and blank-after-trimming give the default, a valid
// value (spaces around it trimmed) is returned, an invalid one gives the
// default and one problem naming the variable.
func TestGetters(t *testing.T) {
	for _, tc := range []struct {
		name    string
		value   string
		read    func(r *env.Reader) any
		want    any
		problem string // "" = no error; else a substring of the one error
	}{
		{"string unset", "", func(r *env.Reader) any { return r.String("V", "def") }, "def", ""},
		{"string blank is unset", "  \t ", func(r *env.Reader) any { return r.String("V", "def") }, "def", ""},
		{"string trimmed", "  x y  ", func(r *env.Reader) any { return r.String("V", "def") }, "x y", ""},

		{"raw untrimmed", " s3cret ", func(r *env.Reader) any { return r.Raw("V") }, " s3cret ", ""},
		{"raw blank is unset", " \n ", func(r *env.Reader) any { return r.Raw("V") }, "", ""},

		{"list unset", "", func(r *env.Reader) any { return r.List("V") }, []string(nil), ""},
		{"list trimmed, empties dropped", " a:1, ,b:2 ,", func(r *env.Reader) any { return r.List("V") }, []string{"a:1", "b:2"}, ""},

		{"oneOf unset", "", func(r *env.Reader) any { return r.OneOf("V", "info", "debug", "info") }, "info", ""},
		{"oneOf lower-cased and trimmed", " DEBUG ", func(r *env.Reader) any { return r.OneOf("V", "info", "debug", "info") }, "debug", ""},
		{"oneOf not allowed", "loud", func(r *env.Reader) any { return r.OneOf("V", "info", "debug", "info") }, "info", `must be one of debug, info, got "loud"`},

		{"int unset", "", func(r *env.Reader) any { return r.PositiveInt("V", 7) }, 7, ""},
		{"int unset, zero default", " ", func(r *env.Reader) any { return r.PositiveInt("V", 0) }, 0, ""},
		{"int trimmed", " 64 ", func(r *env.Reader) any { return r.PositiveInt("V", 7) }, 64, ""},
		{"int zero", "0", func(r *env.Reader) any { return r.PositiveInt("V", 7) }, 7, "must be a positive integer"},
		{"int negative", "-1", func(r *env.Reader) any { return r.PositiveInt("V", 7) }, 7, "must be a positive integer"},
		{"int fraction", "1.5", func(r *env.Reader) any { return r.PositiveInt("V", 7) }, 7, "must be a positive integer"},
		{"int word", "many", func(r *env.Reader) any { return r.PositiveInt("V", 7) }, 7, `got "many"`},

		{"float unset", "", func(r *env.Reader) any { return r.PositiveFloat("V", 2.5) }, 2.5, ""},
		{"float", " 0.5 ", func(r *env.Reader) any { return r.PositiveFloat("V", 2.5) }, 0.5, ""},
		{"float zero", "0", func(r *env.Reader) any { return r.PositiveFloat("V", 2.5) }, 2.5, "must be a positive number"},
		{"float negative", "-3", func(r *env.Reader) any { return r.PositiveFloat("V", 2.5) }, 2.5, "must be a positive number"},
		{"float NaN", "NaN", func(r *env.Reader) any { return r.PositiveFloat("V", 2.5) }, 2.5, "must be a positive number"},
		{"float infinite", "+Inf", func(r *env.Reader) any { return r.PositiveFloat("V", 2.5) }, 2.5, "must be a positive number"},
		{"float too large", "2e9", func(r *env.Reader) any { return r.PositiveFloat("V", 2.5) }, 2.5, "at most 1e+09"},

		{"duration unset", "", func(r *env.Reader) any { return r.Duration("V", time.Second) }, time.Second, ""},
		{"duration trimmed", " 250ms ", func(r *env.Reader) any { return r.Duration("V", time.Second) }, 250 * time.Millisecond, ""},
		{"duration zero", "0s", func(r *env.Reader) any { return r.Duration("V", time.Second) }, time.Second, "must be a positive duration"},
		{"duration bare zero", "0", func(r *env.Reader) any { return r.Duration("V", time.Second) }, time.Second, "must be a positive duration"},
		{"duration negative", "-1ms", func(r *env.Reader) any { return r.Duration("V", time.Second) }, time.Second, "must be a positive duration"},
		{"duration without unit", "200", func(r *env.Reader) any { return r.Duration("V", time.Second) }, time.Second, `got "200"`},

		{"bool unset", "", func(r *env.Reader) any { return r.Bool("V", true) }, true, ""},
		{"bool trimmed", " false ", func(r *env.Reader) any { return r.Bool("V", true) }, false, ""},
		{"bool 1", "1", func(r *env.Reader) any { return r.Bool("V", false) }, true, ""},
		{"bool word", "maybe", func(r *env.Reader) any { return r.Bool("V", true) }, true, "must be true or false"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := from(map[string]string{"V": tc.value})
			if got := tc.read(r); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %#v, want %#v", got, tc.want)
			}
			err := r.Err()
			if tc.problem == "" {
				if err != nil {
					t.Fatalf("V=%q: unexpected error %v", tc.value, err)
				}
				return
			}
			var ve *env.VarError
			if !errors.As(err, &ve) || ve.Name != "V" || !strings.Contains(ve.Problem, tc.problem) {
				t.Fatalf("V=%q: error %v, want a *VarError for V saying %q", tc.value, err, tc.problem)
			}
			if !r.Failed("V") {
				t.Error("Failed(V) = false after a problem with V")
			}
		})
	}
}

// Every bad variable is in the one error, each on its own line and once,
// even when a cross-check fails the same variable again; good ones are not.
func TestErrListsEveryBadVariableOnce(t *testing.T) {
	r := from(map[string]string{
		"A_INT": "zero", "B_DURATION": "-1s", "C_BOOL": "perhaps", "D_GOOD": "5", "E_ONEOF": "xml",
	})
	r.PositiveInt("A_INT", 1)
	d := r.Duration("B_DURATION", time.Minute)
	r.Bool("C_BOOL", false)
	r.PositiveInt("D_GOOD", 1)
	r.OneOf("E_ONEOF", "text", "text", "json")
	if d <= time.Second { // the default came back, so this cross-check passes...
		r.Fail("B_DURATION", "must exceed 1s")
	}
	r.Fail("A_INT", "must be at most 10") // ...and this one repeats a known problem
	r.Fail("F_CROSS", "is required when A_INT is set")
	r.Fail("F_CROSS", "is required, said twice")

	err := r.Err()
	if err == nil {
		t.Fatal("no error")
	}
	lines := strings.Split(err.Error(), "\n")
	want := []string{"A_INT ", "B_DURATION ", "C_BOOL ", "E_ONEOF ", "F_CROSS "}
	if len(lines) != len(want) {
		t.Fatalf("%d lines, want %d (one per bad variable):\n%v", len(lines), len(want), err)
	}
	for i, prefix := range want {
		if !strings.HasPrefix(lines[i], prefix) {
			t.Errorf("line %d = %q, want it to start with %q", i, lines[i], prefix)
		}
	}
	if !strings.Contains(lines[0], `must be a positive integer, got "zero"`) {
		t.Errorf("A_INT kept %q, want the getter's first complaint", lines[0])
	}
	if !strings.Contains(lines[4], "is required when A_INT is set") {
		t.Errorf("F_CROSS kept %q, want the first complaint", lines[4])
	}
	if r.Failed("D_GOOD") {
		t.Error("Failed(D_GOOD) = true for a valid value")
	}
}

func TestNoProblemsIsNil(t *testing.T) {
	r := from(nil)
	r.String("A", "x")
	r.PositiveInt("B", 1)
	r.Duration("C", time.Second)
	if err := r.Err(); err != nil {
		t.Fatalf("Err() = %v on an empty environment, want nil", err)
	}
}

// The getters read through getenv, each asking for its own variable, so a
// config package can list exactly what it reads.
func TestReadsThroughGetenv(t *testing.T) {
	var asked []string
	r := env.New(func(k string) string { asked = append(asked, k); return "" })
	r.String("S", "")
	r.Raw("R")
	r.List("L")
	r.OneOf("O", "a", "a")
	r.PositiveInt("I", 1)
	r.PositiveFloat("F", 1)
	r.Duration("D", time.Second)
	r.Bool("B", false)
	if want := []string{"S", "R", "L", "O", "I", "F", "D", "B"}; !reflect.DeepEqual(asked, want) {
		t.Fatalf("asked %v, want %v", asked, want)
	}
}
