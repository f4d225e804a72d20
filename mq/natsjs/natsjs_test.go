package natsjs_test

import (
	"testing"

	"github.com/flashsale/seckill/mq"
	"github.com/flashsale/seckill/mq/mqtest"
	"github.com/flashsale/seckill/mq/natsjs"
)

func TestConformanceEmbedded(t *testing.T) {
	mqtest.Run(t, func(t *testing.T, cfg mqtest.BackendConfig) (mq.Publisher, mq.Subscriber) {
		b, err := natsjs.New(t.Context(), natsjs.Config{StoreDir: t.TempDir(), Capacity: cfg.Capacity})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = b.Close() })
		return b, b
	}, mqtest.Features{Bounded: true})
}
