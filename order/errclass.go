package order

import (
	"errors"

	"github.com/flashsale/seckill/mq"
	"github.com/flashsale/seckill/order/ordermsg"
)

// Errors a Handle call may wrap. Handle sorts its errors for the queue (see
// PermanentWriteError): the permanent ones below, a malformed message
// (ordermsg.ErrMalformed) and an unknown activity (ErrNotFound) are retried
// MaxAttempts times and then dead-lettered, so they tell an operator why;
// every other failure is marked mq.Transient and waited out.
var (
	// ErrWorkerClosed: Handle was called after Close. Transient: another
	// worker (or this process after its restart) takes the message.
	ErrWorkerClosed = errors.New("order: worker closed")
	// ErrOutOfStock: the database has fewer units available than the
	// batch needs. Redis admitted more than the database holds, which
	// only a bug or a manual edit can cause; nothing was written.
	ErrOutOfStock = errors.New("order: database stock exhausted")
	// ErrUserHasOrder: another live (created or paid) order of the same
	// user and activity is already stored (one unit per user per activity).
	ErrUserHasOrder = errors.New("order: user already has an order for this activity")
	// ErrOrderIDClash: the order id is already stored for another
	// activity or user; two gateways minted the same id, or a message was
	// forged. Nothing was written.
	ErrOrderIDClash = errors.New("order: order id already stored for another activity or user")
)

// PermanentWriteError reports whether a Handle error can never succeed on a
// redelivery: the message itself is wrong (ordermsg.ErrMalformed, an unknown
// activity, ErrOrderIDClash) or the stored data refuses it for good
// (ErrUserHasOrder, ErrOutOfStock).
//
// Everything else is transient, known or not: a database that refuses or
// drops connections, a timeout (the batch's own deadline included), a
// deadlock victim (1213) or a lock wait timeout (1205), Redis failing the
// claim, a worker that is closing. The list is of the permanent errors, not
// of the transient ones, on purpose: an error nobody foresaw is retried
// forever rather than dead-lettered, because an accepted order that is
// dropped is a broken promise to a buyer (invariant 5), while a message
// retried in vain costs a log line every MaxBackoff until someone looks.
func PermanentWriteError(err error) bool {
	for _, target := range []error{ordermsg.ErrMalformed, ErrNotFound, ErrOrderIDClash, ErrUserHasOrder, ErrOutOfStock} {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}

// classify marks err for the queue: permanent errors are returned as they
// are, so they count toward MaxAttempts; all others are mq.Transient.
func classify(err error) error {
	if err == nil || PermanentWriteError(err) {
		return err
	}
	return mq.Transient(err)
}
