package sqldb

import (
	"context"
	"errors"
	"fmt"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"gorm.io/gorm"
)

// tracingPlugin is the name Trace registers on a *gorm.DB.
const tracingPlugin = "seckill:tracing"

// Trace makes every statement on db a span, as long as the statement runs
// inside a traced span: the worker's batch, a cancel, a request. Statements
// with no span around them (the relay's and the sweeper's polls, the backlog
// gauges) are not traced, or each poll would be a trace of its own, several
// a second, burying the orders' traces. The spans carry the SQL text
// without its arguments: a batch's INSERT would otherwise put every buyer's
// id into the trace.
//
// It is a handful of gorm callbacks rather than gorm's OpenTelemetry
// plugin, which links ClickHouse and Postgres drivers into every binary
// (+11.7 MB) for the same spans.
//
// The callbacks belong to db's configuration, shared by every session made
// from it: call Trace once, where the handle is opened (Open does, given
// Config.TracerProvider). A nil or noop provider does nothing; a second
// call is a no-op.
func Trace(db *gorm.DB, tp trace.TracerProvider) error {
	if tp == nil {
		return nil
	}
	if _, off := tp.(noop.TracerProvider); off {
		return nil
	}
	err := db.Use(&statementTracer{tracer: tp.Tracer("github.com/flashsale/seckill/order/sqldb")})
	if err != nil && !errors.Is(err, gorm.ErrRegistered) {
		return fmt.Errorf("trace database statements: %w", err)
	}
	return nil
}

type statementTracer struct{ tracer trace.Tracer }

func (p *statementTracer) Name() string { return tracingPlugin }

// spanKey holds a statement's span, and parentKey the context it ran in,
// between its before and after callbacks.
const (
	spanKey   = "seckill:span"
	parentKey = "seckill:span_parent"
)

func (p *statementTracer) Initialize(db *gorm.DB) error {
	cb := db.Callback()
	for _, h := range []struct {
		op             string
		before, after  func(name string, fn func(*gorm.DB)) error
		gormName, verb string
	}{
		{"create", cb.Create().Before("gorm:create").Register, cb.Create().After("gorm:create").Register, "gorm:create", "INSERT"},
		{"query", cb.Query().Before("gorm:query").Register, cb.Query().After("gorm:query").Register, "gorm:query", "SELECT"},
		{"update", cb.Update().Before("gorm:update").Register, cb.Update().After("gorm:update").Register, "gorm:update", "UPDATE"},
		{"delete", cb.Delete().Before("gorm:delete").Register, cb.Delete().After("gorm:delete").Register, "gorm:delete", "DELETE"},
		{"row", cb.Row().Before("gorm:row").Register, cb.Row().After("gorm:row").Register, "gorm:row", "SELECT"},
		{"raw", cb.Raw().Before("gorm:raw").Register, cb.Raw().After("gorm:raw").Register, "gorm:raw", "RAW"},
	} {
		if err := h.before("seckill:trace_before_"+h.op, p.before(h.verb)); err != nil {
			return err
		}
		if err := h.after("seckill:trace_after_"+h.op, p.after); err != nil {
			return err
		}
	}
	return nil
}

func (p *statementTracer) before(verb string) func(*gorm.DB) {
	return func(db *gorm.DB) {
		ctx := db.Statement.Context
		if ctx == nil || !trace.SpanContextFromContext(ctx).IsValid() {
			return
		}
		name := verb
		if db.Statement.Table != "" {
			name += " " + db.Statement.Table
		}
		ctx, span := p.tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindClient),
			trace.WithAttributes(attribute.String("db.system.name", db.Dialector.Name())))
		db.InstanceSet(parentKey, db.Statement.Context)
		db.Statement.Context = ctx
		db.InstanceSet(spanKey, span)
	}
}

func (p *statementTracer) after(db *gorm.DB) {
	v, _ := db.InstanceGet(spanKey)
	span, ok := v.(trace.Span)
	if !ok {
		return
	}
	db.InstanceSet(spanKey, nil) // a reused statement must not end this span again
	defer span.End()
	// A statement reused for another operation (Save falling back to
	// Create) must not become a child of this ended span.
	if parent, ok := db.InstanceGet(parentKey); ok {
		db.Statement.Context = parent.(context.Context)
	}
	span.SetAttributes(
		attribute.String("db.query.text", db.Statement.SQL.String()), // placeholders, not the arguments
		attribute.Int64("db.response.returned_rows", db.Statement.RowsAffected),
	)
	if err := db.Error; err != nil && !errors.Is(err, gorm.ErrRecordNotFound) {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
}
