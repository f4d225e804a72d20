package httpapi

import (
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/flashsale/seckill/gateway/sale"
)

// orderJSON is an order as the API shows it.
type orderJSON struct {
	OrderID     string     `json:"order_id"`
	ActivityID  string     `json:"activity_id"`
	UserID      string     `json:"user_id"`
	State       string     `json:"state"`
	PriceCents  int64      `json:"price_cents"`
	CreatedAt   time.Time  `json:"created_at"`
	PayDeadline *time.Time `json:"pay_deadline"`
}

func orderJSONOf(v sale.OrderView) orderJSON {
	return orderJSON{
		OrderID: v.OrderID, ActivityID: strconv.FormatInt(v.ActivityID, 10), UserID: v.UserID, State: v.State,
		PriceCents: v.PriceCents, CreatedAt: v.CreatedAt, PayDeadline: v.PayDeadline,
	}
}

// getOrder is GET /api/v1/orders/:id, for its owner.
func (s *Server) getOrder(c *gin.Context) {
	v, err := s.sale.Order(c.Request.Context(), c.GetString(keyUser), c.Param("id"))
	if err != nil {
		s.respond(c, err)
		return
	}
	c.JSON(http.StatusOK, orderJSONOf(v))
}

// payOrder is POST /api/v1/orders/:id/pay: the payment callback (paying
// twice is fine).
func (s *Server) payOrder(c *gin.Context) {
	o, err := s.sale.Pay(c.Request.Context(), c.GetString(keyUser), c.Param("id"))
	if err != nil {
		s.respond(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"order_id": o.ID, "state": o.State})
}
