package natsjs

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/flashsale/seckill/mq"
)

// TestRetryCreate: an attempt the server leaves unanswered is tried again
// (the stream may exist by then); an answer from the server is final; when
// no attempt is answered, the error says the backend is not reachable yet
// (mq.ErrTransient), which a starting process waits out.
func TestRetryCreate(t *testing.T) {
	hang := func(ctx context.Context) (int, error) { <-ctx.Done(); return 0, ctx.Err() }
	refused := &jetstream.APIError{Code: 400, ErrorCode: 10052, Description: "stream configuration invalid"}
	tests := []struct {
		name      string
		span      time.Duration // the caller's deadline; 0: none
		attempts  []func(context.Context) (int, error)
		want      int
		wantCalls int
		wantErr   func(error) bool
	}{
		{"unanswered, then answered", 0,
			[]func(context.Context) (int, error){hang, func(context.Context) (int, error) { return 7, nil }},
			7, 2, func(err error) bool { return err == nil }},
		{"refused by the server", 0,
			[]func(context.Context) (int, error){func(context.Context) (int, error) { return 0, refused }},
			0, 1, func(err error) bool {
				return errors.As(err, new(*jetstream.APIError)) && !errors.Is(err, mq.ErrTransient)
			}},
		{"never answered", 300 * time.Millisecond,
			[]func(context.Context) (int, error){hang, hang, hang},
			0, 1, func(err error) bool {
				return errors.Is(err, mq.ErrTransient) && errors.Is(err, context.DeadlineExceeded)
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			if tt.span > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.span)
				t.Cleanup(cancel)
			}
			calls := 0
			got, err := retryCreate(ctx, func(ctx context.Context) (int, error) {
				f := tt.attempts[min(calls, len(tt.attempts)-1)]
				calls++
				return f(ctx)
			})
			if got != tt.want || calls != tt.wantCalls || !tt.wantErr(err) {
				t.Errorf("retryCreate = %d, %v after %d calls; want %d after %d calls", got, err, calls, tt.want, tt.wantCalls)
			}
		})
	}
}
