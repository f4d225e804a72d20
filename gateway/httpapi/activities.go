package httpapi

import (
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/flashsale/seckill/gateway/sale"
)

// activityJSON is an activity as the API shows it.
type activityJSON struct {
	ID                string    `json:"id"`
	Name              string    `json:"name"`
	Stock             int64     `json:"stock"`
	Remaining         int64     `json:"remaining"`
	PriceCents        int64     `json:"price_cents"`
	StartsAt          time.Time `json:"starts_at"`
	EndsAt            time.Time `json:"ends_at"`
	PayTimeoutSeconds int64     `json:"pay_timeout_seconds"`
	Admission         string    `json:"admission"`
	State             string    `json:"state"`
	ServerTime        time.Time `json:"server_time"`
}

func activityJSONOf(v sale.ActivityView) activityJSON {
	a := &v.Activity
	return activityJSON{
		ID: strconv.FormatInt(a.ID, 10), Name: a.Name, Stock: a.Stock, Remaining: v.Remaining,
		PriceCents: a.PriceCents, StartsAt: a.StartsAt.UTC(), EndsAt: a.EndsAt.UTC(),
		PayTimeoutSeconds: a.PayTimeoutSeconds, Admission: a.Admission, State: v.State, ServerTime: v.ServerTime,
	}
}

// activityID is the :id path parameter of an activity route. An id that is
// not a positive number names no activity: 404, as an unknown one.
func activityID(c *gin.Context) (int64, error) {
	raw := c.Param("id")
	id, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || id <= 0 {
		return 0, errNotFound("activity %q not found", raw)
	}
	return id, nil
}

// getActivity is GET /api/v1/activities/:id.
func (s *Server) getActivity(c *gin.Context) {
	id, err := activityID(c)
	if err != nil {
		s.respond(c, err)
		return
	}
	v, err := s.sale.Activity(c.Request.Context(), id)
	if err != nil {
		s.respond(c, err)
		return
	}
	c.JSON(http.StatusOK, activityJSONOf(v))
}

// listActivities is GET /api/v1/activities: the activities a storefront
// shows (not ended more than a day ago), newest first, at most 50.
func (s *Server) listActivities(c *gin.Context) {
	views, now, err := s.sale.Storefront(c.Request.Context())
	if err != nil {
		s.respond(c, err)
		return
	}
	list := make([]activityJSON, len(views))
	for i, v := range views {
		list[i] = activityJSONOf(v)
	}
	c.JSON(http.StatusOK, gin.H{"activities": list, "server_time": now.UTC()})
}
