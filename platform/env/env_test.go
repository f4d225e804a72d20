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
		{"string unset", "", func(r *env.Reader) any { return r.String("V", "def", "d") }, "def", ""},
		{"string blank is unset", "  \t ", func(r *env.Reader) any { return r.String("V", "def", "d") }, "def", ""},
		{"string trimmed", "  x y  ", func(r *env.Reader) any { return r.String("V", "def", "d") }, "x y", ""},

		{"raw untrimmed", " s3cret ", func(r *env.Reader) any { return r.Raw("V", "d") }, " s3cret ", ""},
		{"raw blank is unset", " \n ", func(r *env.Reader) any { return r.Raw("V", "d") }, "", ""},

		{"list unset", "", func(r *env.Reader) any { return r.List("V", "d") }, []string(nil), ""},
		{"list trimmed, empties dropped", " a:1, ,b:2 ,", func(r *env.Reader) any { return r.List("V", "d") }, []string{"a:1", "b:2"}, ""},

		{"oneOf unset", "", func(r *env.Reader) any { return r.OneOf("V", "info", []string{"debug", "info"}, "d") }, "info", ""},
		{"oneOf lower-cased and trimmed", " DEBUG ", func(r *env.Reader) any { return r.OneOf("V", "info", []string{"debug", "info"}, "d") }, "debug", ""},
		{"oneOf not allowed", "loud", func(r *env.Reader) any { return r.OneOf("V", "info", []string{"debug", "info"}, "d") }, "info", `must be one of debug, info, got "loud"`},

		{"int unset", "", func(r *env.Reader) any { return r.PositiveInt("V", 7, "d") }, 7, ""},
		{"int unset, zero default", " ", func(r *env.Reader) any { return r.PositiveInt("V", 0, "d") }, 0, ""},
		{"int trimmed", " 64 ", func(r *env.Reader) any { return r.PositiveInt("V", 7, "d") }, 64, ""},
		{"int zero", "0", func(r *env.Reader) any { return r.PositiveInt("V", 7, "d") }, 7, "must be a positive integer"},
		{"int negative", "-1", func(r *env.Reader) any { return r.PositiveInt("V", 7, "d") }, 7, "must be a positive integer"},
		{"int fraction", "1.5", func(r *env.Reader) any { return r.PositiveInt("V", 7, "d") }, 7, "must be a positive integer"},
		{"int word", "many", func(r *env.Reader) any { return r.PositiveInt("V", 7, "d") }, 7, `got "many"`},

		{"float unset", "", func(r *env.Reader) any { return r.PositiveFloat("V", 2.5, "d") }, 2.5, ""},
		{"float", " 0.5 ", func(r *env.Reader) any { return r.PositiveFloat("V", 2.5, "d") }, 0.5, ""},
		{"float zero", "0", func(r *env.Reader) any { return r.PositiveFloat("V", 2.5, "d") }, 2.5, "must be a positive number"},
		{"float negative", "-3", func(r *env.Reader) any { return r.PositiveFloat("V", 2.5, "d") }, 2.5, "must be a positive number"},
		{"float NaN", "NaN", func(r *env.Reader) any { return r.PositiveFloat("V", 2.5, "d") }, 2.5, "must be a positive number"},
		{"float infinite", "+Inf", func(r *env.Reader) any { return r.PositiveFloat("V", 2.5, "d") }, 2.5, "must be a positive number"},
		{"float too large", "2e9", func(r *env.Reader) any { return r.PositiveFloat("V", 2.5, "d") }, 2.5, "at most 1e+09"},

		{"duration unset", "", func(r *env.Reader) any { return r.Duration("V", time.Second, "d") }, time.Second, ""},
		{"duration trimmed", " 250ms ", func(r *env.Reader) any { return r.Duration("V", time.Second, "d") }, 250 * time.Millisecond, ""},
		{"duration zero", "0s", func(r *env.Reader) any { return r.Duration("V", time.Second, "d") }, time.Second, "must be a positive duration"},
		{"duration bare zero", "0", func(r *env.Reader) any { return r.Duration("V", time.Second, "d") }, time.Second, "must be a positive duration"},
		{"duration negative", "-1ms", func(r *env.Reader) any { return r.Duration("V", time.Second, "d") }, time.Second, "must be a positive duration"},
		{"duration without unit", "200", func(r *env.Reader) any { return r.Duration("V", time.Second, "d") }, time.Second, `got "200"`},

		{"duration-or-0 unset", "", func(r *env.Reader) any { return r.NonNegativeDuration("V", time.Minute, "d") }, time.Minute, ""},
		{"duration-or-0 zero", "0", func(r *env.Reader) any { return r.NonNegativeDuration("V", time.Minute, "d") }, time.Duration(0), ""},
		{"duration-or-0 trimmed", " 5s ", func(r *env.Reader) any { return r.NonNegativeDuration("V", time.Minute, "d") }, 5 * time.Second, ""},
		{"duration-or-0 negative", "-1s", func(r *env.Reader) any { return r.NonNegativeDuration("V", time.Minute, "d") }, time.Minute, "or 0 for none"},
		{"duration-or-0 without unit", "30", func(r *env.Reader) any { return r.NonNegativeDuration("V", time.Minute, "d") }, time.Minute, `got "30"`},

		{"bool unset", "", func(r *env.Reader) any { return r.Bool("V", true, "d") }, true, ""},
		{"bool trimmed", " false ", func(r *env.Reader) any { return r.Bool("V", true, "d") }, false, ""},
		{"bool 1", "1", func(r *env.Reader) any { return r.Bool("V", false, "d") }, true, ""},
		{"bool word", "maybe", func(r *env.Reader) any { return r.Bool("V", true, "d") }, true, "must be true or false"},
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
	r.PositiveInt("A_INT", 1, "d")
	d := r.Duration("B_DURATION", time.Minute, "d")
	r.Bool("C_BOOL", false, "d")
	r.PositiveInt("D_GOOD", 1, "d")
	r.OneOf("E_ONEOF", "text", []string{"text", "json"}, "d")
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
	r.String("A", "x", "d")
	r.PositiveInt("B", 1, "d")
	r.Duration("C", time.Second, "d")
	if err := r.Err(); err != nil {
		t.Fatalf("Err() = %v on an empty environment, want nil", err)
	}
}

// The getters read through getenv, each asking for its own variable, so a
// config package can list exactly what it reads.
func TestReadsThroughGetenv(t *testing.T) {
	var asked []string
	r := env.New(func(k string) string { asked = append(asked, k); return "" })
	r.String("S", "", "d")
	r.Raw("R", "d")
	r.List("L", "d")
	r.OneOf("O", "a", []string{"a"}, "d")
	r.PositiveInt("I", 1, "d")
	r.PositiveFloat("F", 1, "d")
	r.Duration("D", time.Second, "d")
	r.Bool("B", false, "d")
	if want := []string{"S", "R", "L", "O", "I", "F", "D", "B"}; !reflect.DeepEqual(asked, want) {
		t.Fatalf("asked %v, want %v", asked, want)
	}
}

// The Reader records each variable once, in the order first read, with the
// kind, the default as an operator writes it and the description; the
// allowed values of OneOf; DefaultText's words instead of the value.
func TestSettingsRecordWhatWasRead(t *testing.T) {
	r := from(map[string]string{"S": "set values change nothing recorded"})
	r.String("S", "x", "a string")
	r.Raw("R", "a secret")
	r.List("L", "a list")
	r.OneOf("O", "b", []string{"a", "b"}, "a choice")
	r.PositiveInt("I", 64, "an int")
	r.PositiveInt("I0", 0, "an int the component chooses")
	r.PositiveFloat("F", 0.5, "a rate")
	r.Duration("D", 5*time.Minute, "a duration")
	r.Duration("DU", 200*time.Microsecond, "a short one")
	r.NonNegativeDuration("DZ", time.Minute, "a wait, or none")
	r.Bool("B", false, "a switch")
	r.DefaultText("json, or text in demo mode").OneOf("W", "json", []string{"text", "json"}, "words")
	r.String("S", "y", "read again: the first description stays")

	want := []env.Setting{
		{Name: "S", Kind: env.KindText, Default: "x", Doc: "a string"},
		{Name: "R", Kind: env.KindText, Doc: "a secret"},
		{Name: "L", Kind: env.KindList, Doc: "a list"},
		{Name: "O", Kind: env.KindOneOf, Default: "b", Allowed: []string{"a", "b"}, Doc: "a choice"},
		{Name: "I", Kind: env.KindInt, Default: "64", Doc: "an int"},
		{Name: "I0", Kind: env.KindInt, Doc: "an int the component chooses"},
		{Name: "F", Kind: env.KindNumber, Default: "0.5", Doc: "a rate"},
		{Name: "D", Kind: env.KindDuration, Default: "5m", Doc: "a duration"},
		{Name: "DU", Kind: env.KindDuration, Default: "200us", Doc: "a short one"},
		{Name: "DZ", Kind: env.KindDurationOff, Default: "1m", Doc: "a wait, or none"},
		{Name: "B", Kind: env.KindBool, Default: "false", Doc: "a switch"},
		{Name: "W", Kind: env.KindOneOf, Default: "json, or text in demo mode", DefaultWords: true, Allowed: []string{"text", "json"}, Doc: "words"},
	}
	if got := r.Settings(); !reflect.DeepEqual(got, want) {
		t.Fatalf("Settings() =\n%+v\nwant\n%+v", got, want)
	}
	if got, want := env.Names(r.Settings()), []string{"S", "R", "L", "O", "I", "I0", "F", "D", "DU", "DZ", "B", "W"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("Names = %v, want %v", got, want)
	}
}

// DefaultText's view shares the Reader's problems and records, and the
// words apply to its reads only.
func TestDefaultTextSharesTheReader(t *testing.T) {
	r := from(map[string]string{"A": "0"})
	r.DefaultText("the component's").PositiveInt("A", 0, "a")
	r.PositiveInt("B", 3, "b")
	if !r.Failed("A") || r.Err() == nil {
		t.Fatalf("a problem read through the view is not the Reader's: Failed(A)=%v, Err=%v", r.Failed("A"), r.Err())
	}
	got := r.Settings()
	if len(got) != 2 || got[0].Default != "the component's" || !got[0].DefaultWords || got[1].Default != "3" || got[1].DefaultWords {
		t.Fatalf("Settings() = %+v, want A with the words and B with its value", got)
	}
}

// IsSet says whether a variable is set (blank is not) without describing
// it: a variable only ever checked is recorded without a description, so
// the reference test finds it; a later described read fills it in.
func TestIsSet(t *testing.T) {
	r := from(map[string]string{"SET": " x ", "BLANK": "  "})
	if !r.IsSet("SET") || r.IsSet("BLANK") || r.IsSet("UNSET") {
		t.Fatalf("IsSet: SET=%v BLANK=%v UNSET=%v, want true false false", r.IsSet("SET"), r.IsSet("BLANK"), r.IsSet("UNSET"))
	}
	r.String("BLANK", "d", "now described")
	for _, s := range r.Settings() {
		switch {
		case s.Name == "BLANK" && (s.Doc != "now described" || s.Default != "d"):
			t.Errorf("BLANK = %+v, want the later read's description and default", s)
		case s.Name != "BLANK" && s.Doc != "":
			t.Errorf("%s = %+v, want no description", s.Name, s)
		}
	}
}

// Describe reads over an empty environment, so every default is taken.
func TestDescribe(t *testing.T) {
	var got time.Duration
	settings := env.Describe(func(r *env.Reader) {
		got = r.Duration("D", time.Second, "d")
		r.String("S", "", "s")
	})
	if got != time.Second || !reflect.DeepEqual(env.Names(settings), []string{"D", "S"}) {
		t.Fatalf("Describe read %v and recorded %v, want the default 1s and [D S]", got, env.Names(settings))
	}
}

func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		5 * time.Minute: "5m", 720 * time.Hour: "720h", 90 * time.Second: "1m30s",
		time.Hour + 30*time.Minute: "1h30m", 2 * time.Second: "2s", 200 * time.Microsecond: "200us",
		10 * time.Millisecond: "10ms",
	} {
		if got := env.FormatDuration(d); got != want {
			t.Errorf("FormatDuration(%v) = %q, want %q", d, got, want)
		}
		if back, err := time.ParseDuration(env.FormatDuration(d)); err != nil || back != d {
			t.Errorf("FormatDuration(%v) = %q does not parse back: %v, %v", d, env.FormatDuration(d), back, err)
		}
	}
}
