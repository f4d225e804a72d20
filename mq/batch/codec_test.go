package batch_test

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"maps"
	"strconv"
	"strings"
	"testing"

	"github.com/flashsale/seckill/mq"
	"github.com/flashsale/seckill/mq/batch"
)

func TestCodecRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		msgs []*mq.Message
	}{
		{"no messages", nil},
		{"one empty message", []*mq.Message{{}}},
		{"fields and headers", []*mq.Message{
			{ID: "id-1", Key: "user-1", Headers: map[string]string{"traceparent": "00-abc-01", "X-Mixed-Case": "v", "x-empty": ""}, Payload: []byte(`{"order_id":"1"}`)},
			{ID: "id-2", Payload: []byte{0, 1, 2, 0xff}},
			{ID: "id-3", Key: "k", Headers: map[string]string{"": "empty name"}},
		}},
		{"long fields", []*mq.Message{
			{ID: strings.Repeat("i", 300), Key: strings.Repeat("k", 200), Headers: map[string]string{strings.Repeat("h", 130): strings.Repeat("v", 70000)}, Payload: bytes.Repeat([]byte("p"), 1<<17)},
		}},
		{"unicode", []*mq.Message{{ID: "订单-1", Key: "用户", Headers: map[string]string{"名": "值"}, Payload: []byte("秒杀")}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := batch.Decode(batch.Encode(tc.msgs))
			if err != nil {
				t.Fatalf("Decode(Encode(msgs)): %v", err)
			}
			assertSameMessages(t, got, tc.msgs)
		})
	}
}

// TestDecodePayloadsDoNotOverlap: a handler appending to one message's
// payload must not overwrite the next message's bytes, which share the
// envelope's buffer.
func TestDecodePayloadsDoNotOverlap(t *testing.T) {
	msgs, err := batch.Decode(batch.Encode([]*mq.Message{{Payload: []byte("first")}, {Payload: []byte("second")}}))
	if err != nil {
		t.Fatal(err)
	}
	_ = append(msgs[0].Payload, "XXXXXXXXXXXX"...)
	if string(msgs[1].Payload) != "second" {
		t.Errorf("second payload is %q after appending to the first, want \"second\"", msgs[1].Payload)
	}
}

func TestDecodeRejects(t *testing.T) {
	valid := batch.Encode([]*mq.Message{{ID: "a", Key: "k", Headers: map[string]string{"h": "v"}, Payload: []byte("p")}})
	dupHeader := []byte{1, 1, 0, 0, 2, 1, 'h', 1, 'a', 1, 'h', 1, 'b', 0}
	tests := []struct {
		name    string
		payload []byte
		want    string // in the error
	}{
		{"empty", nil, "empty payload"},
		{"unknown version", append([]byte{2}, valid[1:]...), "format version 2"},
		{"plain JSON", []byte(`{"order_id":"1"}`), "format version 123"},
		{"bad count", []byte{1, 0xff}, "message count"},
		{"count beyond the bytes", []byte{1, 200, 1, 0, 0, 0, 0}, "more than"},
		{"truncated", valid[:len(valid)-1], "payload of 1 bytes"},
		{"trailing bytes", append(append([]byte(nil), valid...), 0), "bytes after the last message"},
		{"header named twice", dupHeader, `header "h" twice`},
		{"huge length", binary.AppendUvarint([]byte{1, 1}, 1<<62), "only"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			msgs, err := batch.Decode(tc.payload)
			if !errors.Is(err, batch.ErrMalformed) {
				t.Fatalf("Decode = %d messages, err %v; want an error wrapping ErrMalformed", len(msgs), err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
		})
	}
}

// FuzzDecode: any payload decodes without panicking, and whatever decodes
// encodes back to messages that decode the same.
func FuzzDecode(f *testing.F) {
	f.Add(batch.Encode([]*mq.Message{{ID: "a", Key: "k", Headers: map[string]string{"h": "v"}, Payload: []byte("p")}, {}}))
	f.Add([]byte{1, 0})
	f.Add([]byte{1, 1, 0, 0, 1, 0, 0, 0})
	f.Add([]byte(`{"order_id":"1"}`))
	f.Fuzz(func(t *testing.T, p []byte) {
		msgs, err := batch.Decode(p)
		if err != nil {
			if !errors.Is(err, batch.ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		again, err := batch.Decode(batch.Encode(msgs))
		if err != nil {
			t.Fatalf("re-encoding decoded messages: %v", err)
		}
		assertSameMessages(t, again, msgs)
	})
}

// FuzzRoundTrip: messages built from arbitrary fields survive an envelope
// exactly.
func FuzzRoundTrip(f *testing.F) {
	f.Add("id", "key", "name", "value", []byte("payload"), uint8(3))
	f.Add("", "", "", "", []byte{}, uint8(1))
	f.Fuzz(func(t *testing.T, id, key, hk, hv string, payload []byte, n uint8) {
		msgs := make([]*mq.Message, int(n%8))
		for i := range msgs {
			m := &mq.Message{ID: id + strconv.Itoa(i), Key: key, Payload: payload}
			if i%2 == 0 {
				m.Headers = map[string]string{hk: hv, hk + "-" + strconv.Itoa(i): hv}
			}
			msgs[i] = m
		}
		got, err := batch.Decode(batch.Encode(msgs))
		if err != nil {
			t.Fatal(err)
		}
		assertSameMessages(t, got, msgs)
	})
}

func assertSameMessages(t *testing.T, got, want []*mq.Message) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d messages, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.ID != w.ID || g.Key != w.Key || !bytes.Equal(g.Payload, w.Payload) || !maps.Equal(g.Headers, w.Headers) {
			t.Errorf("message %d = {ID %q Key %q Headers %q Payload %q}, want {ID %q Key %q Headers %q Payload %q}",
				i, g.ID, g.Key, g.Headers, g.Payload, w.ID, w.Key, w.Headers, w.Payload)
		}
	}
}

// BenchmarkCodec compares the envelope format with the obvious alternative,
// JSON (encoding/json, payloads base64 as []byte), on an envelope of 128
// order messages with the trace headers mqotel adds: time and bytes.
func BenchmarkCodec(b *testing.B) {
	msgs := make([]*mq.Message, 128)
	for i := range msgs {
		msgs[i] = &mq.Message{
			ID:  "0251377809887330304-" + strconv.Itoa(i),
			Key: "u-" + strconv.Itoa(100000+i),
			Headers: map[string]string{
				"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
				"baggage":     "order=o-42",
			},
			Payload: order,
		}
	}
	type jsonMsg struct {
		ID      string            `json:"id"`
		Key     string            `json:"key,omitempty"`
		Headers map[string]string `json:"headers,omitempty"`
		Payload []byte            `json:"payload"`
	}
	toJSON := func() []byte {
		js := make([]jsonMsg, len(msgs))
		for i, m := range msgs {
			js[i] = jsonMsg{m.ID, m.Key, m.Headers, m.Payload}
		}
		out, err := json.Marshal(js)
		if err != nil {
			b.Fatal(err)
		}
		return out
	}
	binary := batch.Encode(msgs)
	jsonEnv := toJSON()

	b.Run("binary/encode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			batch.Encode(msgs)
		}
		b.ReportMetric(float64(len(binary)), "bytes/envelope")
	})
	b.Run("binary/decode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := batch.Decode(binary); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("json/encode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			toJSON()
		}
		b.ReportMetric(float64(len(jsonEnv)), "bytes/envelope")
	})
	b.Run("json/decode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var js []jsonMsg
			if err := json.Unmarshal(jsonEnv, &js); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// order is a payload the size of the gateway's order message.
var order = []byte(`{"order_id":"0251377809887330304-1","activity_id":42,"user_id":"u-123456","request_id":"click-u-123456","price_cents":9900,"reserved_at":"2026-11-11T00:00:00.123Z"}`)
