package httpapi

import "github.com/gin-gonic/gin"

// Routes are the router's routes (method and gin path), for the test that
// holds them against docs/openapi.yaml (openapi_test.go).
func (s *Server) Routes() gin.RoutesInfo { return s.engine.Routes() }
