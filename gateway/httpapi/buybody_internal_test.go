package httpapi

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// The hand-written reader must give what decodeJSON (encoding/json) gives
// for every body: the same fields, or the same answer.
func TestReadBuyBodyAgreesWithDecodeJSON(t *testing.T) {
	bodies := map[string]string{
		"empty":               "",
		"blank":               " \n\t ",
		"empty object":        "{}",
		"request_id":          `{"request_id":"click-1"}`,
		"both":                `{"request_id":"click-1","buy_token":"7.alice.1800000000.abc-_"}`,
		"both, reversed":      ` { "buy_token" : "t" , "request_id" : "r" } `,
		"repeated key":        `{"request_id":"a","request_id":"b"}`,
		"upper-case key":      `{"REQUEST_ID":"a"}`,
		"unknown key":         `{"request_id":"a","quantity":2}`,
		"escaped value":       `{"request_id":"a\u0062"}`,
		"non-ASCII value":     `{"request_id":"café"}`,
		"null value":          `{"request_id":null}`,
		"number value":        `{"request_id":1}`,
		"trailing comma":      `{"request_id":"a",}`,
		"leading comma":       `{,"request_id":"a"}`,
		"missing colon":       `{"request_id" "a"}`,
		"unterminated":        `{"request_id":"a`,
		"trailing data":       `{"request_id":"a"} {}`,
		"trailing brace":      `{"request_id":"a"}}`,
		"trailing bracket":    `{"request_id":"a"}]`,
		"trailing space":      "{\"request_id\":\"a\"} \n",
		"array":               `["a"]`,
		"string":              `"a"`,
		"nested":              `{"request_id":{"a":"b"}}`,
		"over the fast limit": `{"request_id":"a"` + strings.Repeat(" ", buyBodyMax) + `}`,
		"over the body limit": `{"request_id":"` + strings.Repeat("a", 2048) + `"}`,
	}
	for name, body := range bodies {
		t.Run(name, func(t *testing.T) {
			read := func(fast bool) (buyBody, error) {
				r := httptest.NewRequest("POST", "/", strings.NewReader(body))
				rec := httptest.NewRecorder()
				rb := http.MaxBytesReader(rec, r.Body, 1024)
				if fast {
					var buf [buyBodyMax]byte
					return readBuyBody(rb, &buf)
				}
				var b buyBody
				return b, decodeJSON(rb, &b, true)
			}
			got, gotErr := read(true)
			want, wantErr := read(false)
			if got != want || (gotErr == nil) != (wantErr == nil) {
				t.Fatalf("readBuyBody = %+v, %v; decodeJSON = %+v, %v", got, gotErr, want, wantErr)
			}
			if gotErr != nil {
				var g, w *apiError
				if !errors.As(gotErr, &g) || !errors.As(wantErr, &w) || g.status != w.status || g.code != w.code || g.message != w.message {
					t.Fatalf("answers differ: %v vs %v", gotErr, wantErr)
				}
			}
		})
	}
}

func TestValidRequestID(t *testing.T) {
	for id, want := range map[string]bool{
		"click-1": true, "a.b:c_d-e": true, strings.Repeat("x", 64): true,
		"": false, strings.Repeat("x", 65): false, "a b": false, "a/b": false, "é": false, "a@b": false,
	} {
		if got := validRequestID(id); got != want {
			t.Errorf("validRequestID(%q) = %v, want %v", id, got, want)
		}
	}
}

// A stray closing brace or bracket after the object is data after it:
// json.Decoder.More does not see those, so decodeJSON reads what is left.
func TestDecodeJSONRefusesTrailingData(t *testing.T) {
	for _, body := range []string{`{"request_id":"a"}}`, `{"request_id":"a"}]`, `{"request_id":"a"} x`} {
		var b buyBody
		err := decodeJSON(strings.NewReader(body), &b, true)
		var ae *apiError
		if !errors.As(err, &ae) || ae.code != codeBadJSON {
			t.Errorf("decodeJSON(%q) = %v, want 400 BAD_JSON", body, err)
		}
	}
	var b buyBody
	if err := decodeJSON(strings.NewReader("{\"request_id\":\"a\"}\n\t "), &b, true); err != nil || b.RequestID != "a" {
		t.Errorf("trailing whitespace: %+v, %v; want accepted", b, err)
	}
}
