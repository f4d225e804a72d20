package httpapi

import (
	"errors"
	"net/http"
	"os"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/flashsale/seckill/gateway/sale"
)

// buyRoute is the route template of the buy endpoint.
const buyRoute = "/api/v1/activities/:id/orders"

// postOrder is the buy route: it decodes the purchase, calls the buy
// (sale.Placer: the pipeline, or the naive mode) and answers 202 with the
// order.
func (s *Server) postOrder(c *gin.Context) {
	p, err := s.decodePurchase(c)
	if err != nil {
		s.respond(c, err)
		return
	}
	placed, err := s.buy.Place(c.Request.Context(), p)
	if err != nil {
		s.respond(c, err)
		return
	}
	s.dash.record(c.Param("id"), outAccepted)
	s.traceOrder(c.Request.Context(), placed.OrderID)
	c.JSON(http.StatusAccepted, gin.H{"order_id": placed.OrderID, "state": placed.State})
}

// errBodyTimeout answers a buy whose body did not arrive within
// Config.BuyBodyTimeout.
func errBodyTimeout(d time.Duration) *apiError {
	return &apiError{status: http.StatusRequestTimeout, code: codeRequestTimeout, outcome: outRejected,
		message: "the request body did not arrive within " + d.String() + "; send it at once"}
}

// decodePurchase reads a buy (the buy body, both optional fields) within
// Config.BuyBodyTimeout: the body is read before the buy takes any of the
// gateway's capacity, so a client that sends it slowly holds only its own
// connection, and only that long. An empty body is a buy without a
// request_id.
func (s *Server) decodePurchase(c *gin.Context) (sale.Purchase, error) {
	id, err := activityID(c)
	if err != nil {
		return sale.Purchase{}, err
	}
	if err := setReadDeadline(c.Writer, time.Now().Add(s.cfg.BuyBodyTimeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return sale.Purchase{}, errInternal(err)
	}
	buf := s.bodyBufs.Get().(*[buyBodyMax]byte)
	req, err := readBuyBody(c.Request.Body, buf)
	s.bodyBufs.Put(buf)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		// The connection is closed after the answer: the server would
		// otherwise read the rest of the body first, which is what did
		// not come.
		c.Header("Connection", "close")
		return sale.Purchase{}, errBodyTimeout(s.cfg.BuyBodyTimeout)
	}
	// A keep-alive connection's next request reads without the deadline.
	_ = setReadDeadline(c.Writer, time.Time{})
	if err != nil {
		return sale.Purchase{}, err
	}
	if req.RequestID != "" && !validRequestID(req.RequestID) {
		return sale.Purchase{}, errValidation("request_id: want 1-64 characters of letters, digits and _.:-")
	}
	return sale.Purchase{ActivityID: id, UserID: c.GetString(keyUser), RequestID: req.RequestID,
		BuyToken: req.BuyToken, TraceID: c.GetString(keyRequestID)}, nil
}

// buyTokenJSON is the answer of GET /activities/{id}/buy-token.
type buyTokenJSON struct {
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
}

func (s *Server) limitBuyTokenUser(c *gin.Context) {
	if k := s.deps.Limits.BuyTokenPerUser; k != nil {
		if ok, retry := k.Allow(c.GetString(keyUser)); !ok {
			s.metrics.rateLimited.WithLabelValues("buy_token_user").Inc()
			s.respond(c, errRateLimited("per-user buy-token", retry))
			return
		}
	}
	c.Next()
}

// getBuyToken is GET /api/v1/activities/:id/buy-token: the caller's pass
// to the buy path, from the sale's start.
func (s *Server) getBuyToken(c *gin.Context) {
	id, err := activityID(c)
	if err != nil {
		s.respond(c, err)
		return
	}
	t, err := s.sale.IssueBuyToken(c.Request.Context(), id, c.GetString(keyUser))
	if err != nil {
		s.respond(c, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	c.Data(http.StatusOK, "application/json; charset=utf-8", buyTokenJSON(t).appendJSON(make([]byte, 0, 160)))
}

// appendJSON encodes t as encoding/json would: a token is digits, a user
// id and base64url (auth.ValidUserID: nothing to escape), and expires_at
// is whole seconds in UTC. Every buyer asks for one at the start instant,
// so it skips the reflection.
func (t buyTokenJSON) appendJSON(b []byte) []byte {
	b = append(b, `{"token":"`...)
	b = append(b, t.Token...)
	b = append(b, `","expires_at":"`...)
	b = t.ExpiresAt.UTC().AppendFormat(b, time.RFC3339Nano)
	return append(b, `"}`...)
}

// setReadDeadline is http.ResponseController's SetReadDeadline without its
// allocation (every buy of a spike sets one, and clears it): it unwraps w
// (gin's writer, otelgin's) down to net/http's.
func setReadDeadline(w http.ResponseWriter, t time.Time) error {
	for {
		switch rw := w.(type) {
		case interface{ SetReadDeadline(time.Time) error }:
			return rw.SetReadDeadline(t)
		case interface{ Unwrap() http.ResponseWriter }:
			w = rw.Unwrap()
		default:
			return http.ErrNotSupported
		}
	}
}
