package inventory

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// encodeReservation writes the value stored under the order id in the res
// hash: <status><reserved_ms>:<len(user)>:<user><request id>. The order id
// is the field name, so it is not repeated. lua/lib.lua decodes the same
// format; the status byte comes first so scripts change it in place.
func encodeReservation(r Reservation) string {
	var b strings.Builder
	b.Grow(len(r.Status) + 24 + len(r.UserID) + len(r.RequestID))
	b.WriteString(string(r.Status))
	b.WriteString(strconv.FormatInt(r.ReservedAt.UnixMilli(), 10))
	b.WriteByte(':')
	b.WriteString(strconv.Itoa(len(r.UserID)))
	b.WriteByte(':')
	b.WriteString(r.UserID)
	b.WriteString(r.RequestID)
	return b.String()
}

// decodeReservation reads encodeReservation's format; OrderID stays empty.
func decodeReservation(v string) (Reservation, error) {
	bad := func() (Reservation, error) {
		return Reservation{}, fmt.Errorf("malformed reservation %q", v)
	}
	if len(v) < 1 {
		return bad()
	}
	status, rest := Status(v[:1]), v[1:]
	msText, rest, ok := strings.Cut(rest, ":")
	if !ok {
		return bad()
	}
	lenText, rest, ok := strings.Cut(rest, ":")
	if !ok {
		return bad()
	}
	ms, err1 := strconv.ParseInt(msText, 10, 64)
	ulen, err2 := strconv.Atoi(lenText)
	if err1 != nil || err2 != nil || ulen < 0 || ulen > len(rest) {
		return bad()
	}
	return Reservation{
		UserID:     rest[:ulen],
		RequestID:  rest[ulen:],
		ReservedAt: time.UnixMilli(ms).UTC(),
		Status:     status,
	}, nil
}
