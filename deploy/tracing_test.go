package deploy

import (
	"fmt"
	"net/url"
	"strconv"
	"testing"

	"github.com/flashsale/seckill/platform/env"
	"github.com/flashsale/seckill/platform/tracing"
)

// Tracing in compose: every seckill service exports its spans to the
// compose Jaeger's OTLP/HTTP port, the settings read as the services read
// them (platform/tracing), Jaeger publishes its UI, and Grafana's Jaeger
// datasource points at that same service's query port.

const (
	grafanaJaeger = grafanaDir + "/provisioning/datasources/jaeger.yaml"
	jaegerImage   = "jaegertracing/jaeger"
	jaegerOTLP    = 4318  // OTLP over HTTP
	jaegerQuery   = 16686 // the UI and query API Grafana reads
)

func init() {
	allChecks = append(allChecks, check{"tracing", checkTracing})
	mutations = append(mutations, tracingMutations...)
}

func TestTracingWiring(t *testing.T) { runCheck(t, "tracing") }

func checkTracing(f *files) findings {
	var fs findings
	if !ready(f, &fs, "compose") {
		return fs
	}
	// isJaeger reports whether host is the compose service running Jaeger.
	isJaeger := func(host string) bool {
		s, ok := f.compose.Services[host]
		if !ok {
			return false
		}
		name, _, _, err := parseImage(s.Image)
		return err == nil && name == jaegerImage
	}
	jaeger := ""
	for _, c := range composeSeckill(f, &fs) {
		where := "services." + c.name + ".environment." + tracing.EndpointVar
		r := env.New(func(k string) string { return c.env[k] })
		cfg := tracing.FromEnv(r, c.spec.binary)
		if err := r.Err(); err != nil {
			fs.add(composeFile, "services."+c.name+".environment", "tracing settings refused: %v", err)
			continue
		}
		if !cfg.On() {
			fs.add(composeFile, where, "not set: %s's spans would go nowhere", c.name)
			continue
		}
		u, _ := url.Parse(cfg.Endpoint) // FromEnv checked it
		if !isJaeger(u.Hostname()) {
			fs.add(composeFile, where, "host %q is not the compose service running %s", u.Hostname(), jaegerImage)
			continue
		}
		if u.Port() != strconv.Itoa(jaegerOTLP) || (u.Path != "" && u.Path != "/") {
			fs.add(composeFile, where, "%q: want the base URL http://%s:%d (OTLP/HTTP; the exporter adds /v1/traces)", cfg.Endpoint, u.Hostname(), jaegerOTLP)
		}
		jaeger = u.Hostname()
	}
	if jaeger == "" {
		return fs
	}
	published := false
	for _, p := range f.compose.Services[jaeger].Ports {
		if p.Target == jaegerQuery && p.Published != "" {
			published = true
		}
	}
	if !published {
		fs.add(composeFile, "services."+jaeger+".ports", "does not publish the UI port %d", jaegerQuery)
	}

	var ds grafanaDatasourceFile
	if b, ok := f.read(grafanaJaeger); !ok {
		fs.add(grafanaJaeger, "", "missing")
	} else if err := decodeYAMLStrict(b, &ds); err != nil {
		fs.add(grafanaJaeger, "", "does not parse: %v", err)
	} else {
		if len(ds.Datasources) != 1 {
			fs.add(grafanaJaeger, "datasources", "%d datasources, want the one Jaeger", len(ds.Datasources))
		}
		for i, d := range ds.Datasources {
			where := fmt.Sprintf("datasources[%d]", i)
			if d.Type != "jaeger" || d.UID == "" {
				fs.add(grafanaJaeger, where, "type %q uid %q: want a jaeger datasource with a fixed uid", d.Type, d.UID)
				continue
			}
			u, err := url.Parse(d.URL)
			switch {
			case err != nil || u.Hostname() == "":
				fs.add(grafanaJaeger, where+".url", "%q is not a URL", d.URL)
			case u.Hostname() != jaeger:
				fs.add(grafanaJaeger, where+".url", "host %q is not the compose Jaeger service %q the services export to", u.Hostname(), jaeger)
			case u.Port() != strconv.Itoa(jaegerQuery):
				fs.add(grafanaJaeger, where+".url", "port %s, but Jaeger's query API listens on %d", u.Port(), jaegerQuery)
			}
		}
	}
	return fs
}

var tracingMutations = []mutation{
	{"compose tracing to the wrong port", composeFile, "SECKILL_OTEL_ENDPOINT: http://jaeger:4318", "SECKILL_OTEL_ENDPOINT: http://jaeger:4317", `"http://jaeger:4317": want the base URL http://jaeger:4318`},
	{"compose tracing with the signal path", composeFile, "SECKILL_OTEL_ENDPOINT: http://jaeger:4318", "SECKILL_OTEL_ENDPOINT: http://jaeger:4318/v1/traces", "want the base URL"},
	{"compose tracing to no service", composeFile, "SECKILL_OTEL_ENDPOINT: http://jaeger:4318", "SECKILL_OTEL_ENDPOINT: http://tempo:4318", `host "tempo" is not the compose service running jaegertracing/jaeger`},
	{"compose tracing not a URL", composeFile, "SECKILL_OTEL_ENDPOINT: http://jaeger:4318", "SECKILL_OTEL_ENDPOINT: jaeger:4318", "tracing settings refused: SECKILL_OTEL_ENDPOINT must be the collector's http or https base URL"},
	{"compose tracing off", composeFile, "  SECKILL_OTEL_ENDPOINT: http://jaeger:4318\n", "", "SECKILL_OTEL_ENDPOINT: not set"},
	{"compose jaeger UI unpublished", composeFile, `      - "127.0.0.1:16686:16686"` + "\n", "", "does not publish the UI port 16686"},
	{"grafana jaeger datasource port", grafanaJaeger, "http://jaeger:16686", "http://jaeger:4318", "port 4318, but Jaeger's query API listens on 16686"},
	{"grafana jaeger datasource host", grafanaJaeger, "http://jaeger:16686", "http://localhost:16686", `host "localhost" is not the compose Jaeger service`},
	{"grafana jaeger datasource type", grafanaJaeger, "type: jaeger", "type: zipkin", `type "zipkin" uid "jaeger": want a jaeger datasource`},
}
