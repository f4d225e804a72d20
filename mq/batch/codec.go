package batch

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/flashsale/seckill/mq"
)

// formatV1 is the first byte of every envelope payload, so that the format
// can change without a reader mistaking a new envelope for an old one.
const formatV1 byte = 1

// minRecord is the size of the smallest record (four zero lengths: ID,
// key, header count, payload). It bounds the count a reader believes
// before it allocates, so garbage cannot make it allocate much.
const minRecord = 4

// ErrMalformed is wrapped by every error of Decode: the payload is not an
// envelope this package wrote.
var ErrMalformed = errors.New("batch: malformed envelope")

// The envelope format, chosen over JSON because it carries payloads as they
// are (JSON would base64 them, a third larger) and reads without
// reflection; BenchmarkCodec measures both:
//
//	envelope = version:byte(1) count:uvarint record*count
//	record   = id:str key:str nheaders:uvarint (name:str value:str)*nheaders payload:str
//	str      = length:uvarint bytes
//
// A record is complete in itself, so Publish encodes each message in its
// caller's goroutine (a snapshot the caller may change afterwards) and an
// envelope is the records joined.

// appendRecord appends the record of m (ID, Key, Headers, Payload; nothing
// else) to dst.
func appendRecord(dst []byte, m *mq.Message) []byte {
	dst = appendString(dst, m.ID)
	dst = appendString(dst, m.Key)
	dst = binary.AppendUvarint(dst, uint64(len(m.Headers)))
	for k, v := range m.Headers {
		dst = appendString(dst, k)
		dst = appendString(dst, v)
	}
	dst = binary.AppendUvarint(dst, uint64(len(m.Payload)))
	return append(dst, m.Payload...)
}

// recordSize is len(appendRecord(nil, m)), so a record is allocated once.
func recordSize(m *mq.Message) int {
	n := stringSize(m.ID) + stringSize(m.Key) + uvarintSize(uint64(len(m.Headers)))
	for k, v := range m.Headers {
		n += stringSize(k) + stringSize(v)
	}
	return n + uvarintSize(uint64(len(m.Payload))) + len(m.Payload)
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

func stringSize(s string) int { return uvarintSize(uint64(len(s))) + len(s) }

func uvarintSize(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}

// envelopeOverhead is what an envelope of n records adds to them.
func envelopeOverhead(n int) int { return 1 + uvarintSize(uint64(n)) }

// joinRecords builds the envelope payload of records.
func joinRecords(records [][]byte) []byte {
	size := envelopeOverhead(len(records))
	for _, r := range records {
		size += len(r)
	}
	buf := make([]byte, 0, size)
	buf = append(buf, formatV1)
	buf = binary.AppendUvarint(buf, uint64(len(records)))
	for _, r := range records {
		buf = append(buf, r...)
	}
	return buf
}

// Encode returns the envelope payload carrying msgs: their ID, Key,
// Headers and Payload (DeliverAt and Attempt are not carried). Publisher
// does this itself; Encode is for tools that write envelopes, and for
// tests.
func Encode(msgs []*mq.Message) []byte {
	records := make([][]byte, len(msgs))
	for i, m := range msgs {
		records[i] = appendRecord(make([]byte, 0, recordSize(m)), m)
	}
	return joinRecords(records)
}

// Decode returns the messages of an envelope payload, in the order they
// were encoded. Their Payloads share p's memory (each capped at its own
// length); their Headers are nil when they had none. Any payload that is
// not a well-formed envelope, trailing bytes or a header named twice
// included, gives an error wrapping ErrMalformed, never a panic.
func Decode(p []byte) ([]*mq.Message, error) {
	d := decoder{buf: p}
	if len(p) == 0 {
		return nil, fmt.Errorf("%w: empty payload", ErrMalformed)
	}
	if v := d.buf[0]; v != formatV1 {
		return nil, fmt.Errorf("%w: format version %d, this reader knows %d", ErrMalformed, v, formatV1)
	}
	d.buf = d.buf[1:]
	n := d.count("message count", minRecord)
	msgs := make([]*mq.Message, 0, n)
	for i := 0; i < n && d.err == nil; i++ {
		m := &mq.Message{ID: d.string("id"), Key: d.string("key")}
		if nh := d.count("header count", 2); nh > 0 {
			m.Headers = make(map[string]string, nh)
			for range nh {
				k, v := d.string("header name"), d.string("header value")
				if _, dup := m.Headers[k]; dup && d.err == nil {
					d.err = fmt.Errorf("header %q twice", k)
				}
				m.Headers[k] = v
			}
		}
		if b := d.bytes("payload"); len(b) > 0 {
			m.Payload = b[:len(b):len(b)]
		}
		msgs = append(msgs, m)
	}
	if d.err == nil && len(d.buf) > 0 {
		d.err = fmt.Errorf("%d bytes after the last message", len(d.buf))
	}
	if d.err != nil {
		return nil, fmt.Errorf("%w: message %d of %d: %w", ErrMalformed, len(msgs), n, d.err)
	}
	return msgs, nil
}

// decoder reads the envelope format; its first error sticks and every later
// read returns zero values.
type decoder struct {
	buf []byte
	err error
}

func (d *decoder) uvarint(what string) uint64 {
	if d.err != nil {
		return 0
	}
	x, n := binary.Uvarint(d.buf)
	if n <= 0 {
		d.err = fmt.Errorf("%s: bad length", what)
		return 0
	}
	d.buf = d.buf[n:]
	return x
}

// count reads a count of items of at least minSize bytes each, which the
// rest of the buffer must be able to hold.
func (d *decoder) count(what string, minSize int) int {
	x := d.uvarint(what)
	if d.err == nil && x > uint64(len(d.buf)/minSize) {
		d.err = fmt.Errorf("%s %d: more than the %d bytes left can hold", what, x, len(d.buf))
		return 0
	}
	return int(x)
}

func (d *decoder) bytes(what string) []byte {
	x := d.uvarint(what)
	if d.err != nil {
		return nil
	}
	if x > uint64(len(d.buf)) {
		d.err = fmt.Errorf("%s of %d bytes: only %d left", what, x, len(d.buf))
		return nil
	}
	b := d.buf[:x]
	d.buf = d.buf[x:]
	return b
}

func (d *decoder) string(what string) string { return string(d.bytes(what)) }
