package kafka_test

import (
	"testing"

	"github.com/flashsale/seckill/mq"
	"github.com/flashsale/seckill/mq/mqtest"
)

func TestConformance(t *testing.T) {
	mqtest.Run(t, func(t *testing.T, _ mqtest.BackendConfig) (mq.Publisher, mq.Subscriber) {
		b := newBroker(t, testConfig(newCluster(t)))
		return b, b
	}, mqtest.Features{Bounded: false, DrainsOnClose: false})
}
