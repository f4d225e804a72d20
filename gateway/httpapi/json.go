package httpapi

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
)

// decodeJSON reads body into v. An empty body is allowed when allowEmpty;
// unknown fields are refused so a misspelt field is not silently ignored.
// The error says what is wrong with the body.
func decodeJSON(body io.Reader, v any, allowEmpty bool) error {
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil && !onlySpaceLeft(io.MultiReader(dec.Buffered(), body)) {
		// dec.More is false for a stray '}' or ']', so read what is left.
		err = errors.New("unexpected data after the JSON object")
	}
	var tooLarge *http.MaxBytesError
	switch {
	case err == nil, errors.Is(err, io.EOF) && allowEmpty:
		return nil
	case errors.As(err, &tooLarge):
		return errBodyTooLarge(tooLarge.Limit)
	case errors.Is(err, io.EOF):
		return errBadJSON("request body is empty; a JSON object is required")
	default:
		e := errBadJSON("malformed JSON body: " + err.Error()) // the decoder's text points at the bad byte
		e.cause = err                                          // a read error (a deadline) stays visible to errors.Is
		return e
	}
}

// onlySpaceLeft reports whether r holds nothing but JSON whitespace. r is
// bounded by the body limit; a read error counts as something left.
func onlySpaceLeft(r io.Reader) bool {
	var buf [512]byte
	for {
		n, err := r.Read(buf[:])
		for _, c := range buf[:n] {
			if !isJSONSpace(c) {
				return false
			}
		}
		if err == io.EOF {
			return true
		}
		if err != nil {
			return false
		}
	}
}
