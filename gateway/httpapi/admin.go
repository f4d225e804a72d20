package httpapi

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/flashsale/seckill/gateway/sale"
)

// demoToken is POST /api/v1/auth/demo-token: a user token for whoever the
// caller says, in demo mode only.
func (s *Server) demoToken(c *gin.Context) {
	if !s.cfg.Demo {
		s.respond(c, errNotFound("demo login is only available in demo mode (SECKILL_DEMO=true)"))
		return
	}
	var req struct {
		UserID string `json:"user_id"`
	}
	if err := decodeJSON(c.Request.Body, &req, false); err != nil {
		s.respond(c, err)
		return
	}
	tok, err := s.sale.DemoLogin(c.Request.Context(), req.UserID)
	if err != nil {
		s.respond(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"token": tok})
}

// createActivity is POST /api/v1/admin/activities.
func (s *Server) createActivity(c *gin.Context) {
	var req sale.NewActivity
	if err := decodeJSON(c.Request.Body, &req, false); err != nil {
		s.respond(c, err)
		return
	}
	v, err := s.sale.CreateActivity(c.Request.Context(), req)
	if err != nil {
		s.respond(c, err)
		return
	}
	c.JSON(http.StatusCreated, activityJSONOf(v))
}

// statsJSON is GET /api/v1/admin/activities/:id/stats.
type statsJSON struct {
	Stock           int64 `json:"stock"`
	Remaining       int64 `json:"remaining"`
	Reserved        int64 `json:"reserved"`
	Queued          int64 `json:"queued"`
	OrdersCreated   int64 `json:"orders_created"`
	OrdersPaid      int64 `json:"orders_paid"`
	OrdersCancelled int64 `json:"orders_cancelled"`
	DBAvailable     int64 `json:"db_available"`
}

// stats is GET /api/v1/admin/activities/:id/stats: both sides of the
// activity's conservation identity.
func (s *Server) stats(c *gin.Context) {
	id, err := activityID(c)
	if err != nil {
		s.respond(c, err)
		return
	}
	v, err := s.sale.Stats(c.Request.Context(), id)
	if err != nil {
		s.respond(c, err)
		return
	}
	c.JSON(http.StatusOK, statsJSON(v))
}
