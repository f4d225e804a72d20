package sqldb

import (
	"context"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/flashsale/seckill/testkit"
)

// With a provider, a statement inside a traced span is a span of its own,
// the child of that span, with its SQL but not its arguments; a statement
// outside any span (a poll) is not traced.
func TestTraceStatementsUnderASpan(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  func(t *testing.T) Config
	}{
		{"sqlite", func(t *testing.T) Config { return Config{DataDir: t.TempDir()} }},
		{"mysql", func(t *testing.T) Config { return Config{DSN: testkit.MySQLDSN(t)} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			exp := tracetest.NewInMemoryExporter()
			tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
			t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
			cfg := tc.cfg(t)
			cfg.TracerProvider = tp
			db := open(t, cfg)
			// A second registration (a handle traced twice) is harmless.
			if err := Trace(db, tp); err != nil {
				t.Fatalf("Trace again: %v", err)
			}
			const secret = "buyer-4711"
			var n int

			if err := db.WithContext(t.Context()).Raw("SELECT COUNT(*) WHERE ? <> ''", secret).Scan(&n).Error; err != nil {
				t.Fatal(err)
			}
			if spans := exp.GetSpans(); len(spans) != 0 {
				t.Fatalf("a statement outside any span recorded %d spans (%s), want none", len(spans), spans[0].Name)
			}

			ctx, parent := tp.Tracer("test").Start(t.Context(), "unit of work")
			if err := db.WithContext(ctx).Raw("SELECT COUNT(*) WHERE ? <> ''", secret).Scan(&n).Error; err != nil {
				t.Fatal(err)
			}
			parent.End()
			var stmt *tracetest.SpanStub
			for _, s := range exp.GetSpans() {
				if s.Name != "unit of work" {
					stmt = &s
				}
			}
			if stmt == nil {
				t.Fatalf("no statement span among %d spans", len(exp.GetSpans()))
			}
			if stmt.Parent.SpanID() != parent.SpanContext().SpanID() {
				t.Errorf("statement span %q has parent %s, want %s", stmt.Name, stmt.Parent.SpanID(), parent.SpanContext().SpanID())
			}
			var text string
			for _, kv := range stmt.Attributes {
				if kv.Key == "db.query.text" {
					text = kv.Value.AsString()
				}
			}
			if !strings.Contains(text, "SELECT COUNT(*)") || strings.Contains(text, secret) {
				t.Errorf("db.query.text = %q, want the statement without its argument %q", text, secret)
			}
		})
	}
}

// Without a provider, or with a noop one, gorm runs without the plugin.
func TestTraceOffInstallsNothing(t *testing.T) {
	for _, cfg := range []Config{{}, {TracerProvider: noop.NewTracerProvider()}} {
		cfg.DataDir = t.TempDir()
		db := open(t, cfg)
		if _, ok := db.Plugins[tracingPlugin]; ok {
			t.Errorf("TracerProvider %T: the tracing plugin is installed", cfg.TracerProvider)
		}
	}
}
