package httpapi

// The live dashboard's routes: its page, who may watch, and the stream of
// samples (Server-Sent Events) that the sampler in dashboard.go feeds.

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
)

// dashboardPage serves the dashboard's HTML.
func (s *Server) dashboardPage(c *gin.Context) {
	if s.deps.Static == nil {
		s.respond(c, errNotFound("this process serves no web pages"))
		return
	}
	c.FileFromFS("/dashboard.html", s.deps.Static)
}

// dashboardAccess lets anyone watch in demo mode, and only the admin
// otherwise: order counts and request rates are operational data.
func (s *Server) dashboardAccess(c *gin.Context) {
	if s.cfg.Demo {
		c.Next()
		return
	}
	s.requireAdmin(c)
}

// dashboardStream is GET /api/v1/dashboard/activities/:id/stream: an SSE
// stream, first an "history" event with the samples so far (a JSON array),
// then a "sample" event per interval. A process holds at most 64 streams,
// and one client IP at most Config.DashboardStreamsPerIP of them; past
// either cap the answer is 503 BUSY with Retry-After.
func (s *Server) dashboardStream(c *gin.Context) {
	id, err := activityID(c)
	if err != nil {
		s.respond(c, err)
		return
	}
	a, err := s.sale.CachedActivity(c.Request.Context(), id)
	if err != nil {
		s.respond(c, err)
		return
	}
	d := s.dash
	// The client IP the rate limits key on: the socket's address, or
	// X-Forwarded-For from a trusted proxy only.
	ip := c.ClientIP()
	if err := d.acquireStream(ip); err != nil {
		s.respond(c, err)
		return
	}
	defer d.releaseStream(ip)
	sub, hist, err := d.subscribe(a.ID)
	if err != nil {
		s.respond(c, err)
		return
	}
	defer d.unsubscribe(a.ID, sub)

	w := c.Writer
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	// The server's WriteTimeout would cut the stream after 30 s: every
	// write moves the connection's deadline a little past the next one.
	window := 2*d.interval + 15*time.Second
	write := func(frame []byte) bool {
		if err := rc.SetWriteDeadline(time.Now().Add(window)); err != nil && !errors.Is(err, http.ErrNotSupported) {
			return false
		}
		if _, err := w.Write(frame); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	event := func(name string, v any) bool {
		b, err := json.Marshal(v)
		if err != nil {
			return false
		}
		return write(fmt.Appendf(nil, "event: %s\ndata: %s\n\n", name, b))
	}
	if !write([]byte("retry: 2000\n\n")) || !event("history", hist) {
		return
	}
	ping := time.NewTicker(15 * time.Second)
	defer ping.Stop()
	ctx := c.Request.Context()
	for {
		select {
		case <-ctx.Done(): // the viewer left
			return
		case <-d.ctx.Done(): // shutting down
			return
		case <-ping.C:
			if !write([]byte(": ping\n\n")) {
				return
			}
		case smp, ok := <-sub:
			if !ok { // dropped as too slow, or closing
				return
			}
			if !event("sample", smp) {
				return
			}
		}
	}
}
