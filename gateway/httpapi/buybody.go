package httpapi

import (
	"bytes"
	"io"
)

// The buy body is tiny and always the same shape, {"request_id":"...",
// "buy_token":"..."}, and every buy of a spike decodes one, most of them
// to be answered 410 from memory. encoding/json spends more on it than the
// rest of that answer. readBuyBody reads the shape the page and clients
// send by hand and hands anything else (escapes, other keys, other types,
// a body over a few hundred bytes) to decodeJSON, so every accepted body
// means what encoding/json makes of it and every refusal has its message.

// buyBodyMax is the largest body the hand-written reader takes.
const buyBodyMax = 512

type buyBody struct {
	RequestID string `json:"request_id"`
	BuyToken  string `json:"buy_token"`
}

// readBuyBody decodes a buy body (empty is allowed). buf is scratch space
// of buyBodyMax bytes.
func readBuyBody(body io.Reader, buf *[buyBodyMax]byte) (buyBody, error) {
	n, err := io.ReadFull(body, buf[:])
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		if b, ok := parseBuyBody(buf[:n]); ok {
			return b, nil
		}
	}
	// Too long, a read error, or not the plain shape: the general decoder
	// over what was read and the rest (a MaxBytesReader's error sticks).
	var b buyBody
	return b, decodeJSON(io.MultiReader(bytes.NewReader(buf[:n]), body), &b, true)
}

// parseBuyBody reads an empty body or a JSON object whose keys are exactly
// request_id and buy_token (a repeated key: the last wins, as in
// encoding/json) and whose values are strings of printable ASCII without
// escapes. ok false means: not that shape, ask encoding/json.
func parseBuyBody(b []byte) (out buyBody, ok bool) {
	b = trimJSONSpace(b)
	if len(b) == 0 {
		return out, true
	}
	if b[0] != '{' || b[len(b)-1] != '}' {
		return out, false
	}
	b = trimJSONSpace(b[1 : len(b)-1])
	for len(b) > 0 {
		var key, val []byte
		if key, b, ok = jsonPlainString(b); !ok {
			return out, false
		}
		b = trimJSONSpace(b)
		if len(b) == 0 || b[0] != ':' {
			return out, false
		}
		if val, b, ok = jsonPlainString(trimJSONSpace(b[1:])); !ok {
			return out, false
		}
		switch string(key) {
		case "request_id":
			out.RequestID = string(val)
		case "buy_token":
			out.BuyToken = string(val)
		default:
			return out, false
		}
		b = trimJSONSpace(b)
		if len(b) > 0 {
			if b[0] != ',' {
				return out, false
			}
			if b = trimJSONSpace(b[1:]); len(b) == 0 {
				return out, false // a trailing comma
			}
		}
	}
	return out, true
}

// jsonPlainString reads a string of printable ASCII without escapes at the
// start of b and returns its contents and what follows.
func jsonPlainString(b []byte) (s, rest []byte, ok bool) {
	if len(b) == 0 || b[0] != '"' {
		return nil, nil, false
	}
	for i := 1; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			return b[1:i], b[i+1:], true
		case c == '\\' || c < 0x20 || c > 0x7e:
			return nil, nil, false
		}
	}
	return nil, nil, false
}

func trimJSONSpace(b []byte) []byte {
	for len(b) > 0 && isJSONSpace(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && isJSONSpace(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}

func isJSONSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// validRequestID reports whether id is 1-64 characters of letters, digits
// and _.:- (the idempotency key a client may send with a buy).
func validRequestID(id string) bool {
	if len(id) == 0 || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		switch c := id[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '_' || c == '.' || c == ':' || c == '-':
		default:
			return false
		}
	}
	return true
}
