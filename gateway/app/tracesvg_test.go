package app

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"html"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"
)

// Layout of the waterfall, in SVG pixels.
const (
	wfWidth   = 1120
	wfLabelW  = 440 // the span names, indented by depth
	wfRight   = 90  // room for the last bar's duration
	wfRowH    = 22
	wfTop     = 64 // title and time axis
	wfIndent  = 14
	wfBarH    = 14
	wfTicks   = 6
	wfBottomH = 56 // legend and how it was made
)

// wfColors tells the components apart.
var wfColors = []string{"#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#e15759", "#76b7b2", "#9c755f"}

// component names the part of the pipeline a span's instrumentation scope
// belongs to: in the all-in-one every span has one service.name, so the
// colors tell the layers apart instead.
func component(scope string) string {
	for _, c := range []struct{ part, name string }{
		{"otelgin", "HTTP (otelgin)"},
		{"gateway/httpapi", "gateway"},
		{"mqotel", "queue (mqotel)"},
		{"redisotel", "Redis (go-redis)"},
		{"order/sqldb", "database (SQL statements)"},
		{"seckill/order", "order side"},
		{"seckill/notifier", "notifier"},
	} {
		if strings.Contains(scope, c.part) {
			return c.name
		}
	}
	if scope == "" {
		return "other"
	}
	return scope
}

// renderWaterfall draws the spans of one trace as a trace viewer's
// waterfall: one row per span in tree order (children under their parent,
// by start time, indented by depth), a bar from its start to its end on
// the trace's time axis, its duration beside it, colored by the component
// that started it; each row names its service.
func renderWaterfall(spans []span, title string) []byte {
	ids := map[string]bool{}
	for _, s := range spans {
		ids[s.SpanID] = true
	}
	children := map[string][]span{}
	var roots []span
	for _, s := range spans {
		if s.Parent == "" || !ids[s.Parent] {
			roots = append(roots, s)
		} else {
			children[s.Parent] = append(children[s.Parent], s)
		}
	}
	byStart := func(a, b span) int { return a.Start.Compare(b.Start) }
	slices.SortFunc(roots, byStart)
	type row struct {
		span
		depth int
	}
	var rows []row
	var walk func(s span, depth int)
	walk = func(s span, depth int) {
		rows = append(rows, row{s, depth})
		kids := children[s.SpanID]
		slices.SortFunc(kids, byStart)
		for _, k := range kids {
			walk(k, depth+1)
		}
	}
	for _, r := range roots {
		walk(r, 0)
	}

	var t0, t1 time.Time
	for i, s := range spans {
		if i == 0 || s.Start.Before(t0) {
			t0 = s.Start
		}
		if i == 0 || s.End.After(t1) {
			t1 = s.End
		}
	}
	total := max(t1.Sub(t0), time.Microsecond)
	x0, xw := float64(wfLabelW+10), float64(wfWidth-wfLabelW-10-wfRight)
	x := func(t time.Time) float64 { return x0 + float64(t.Sub(t0))/float64(total)*xw }

	color := map[string]string{}
	var parts []string
	for _, r := range rows {
		if c := component(r.Scope); color[c] == "" {
			color[c] = wfColors[len(parts)%len(wfColors)]
			parts = append(parts, c)
		}
	}

	height := wfTop + len(rows)*wfRowH + wfBottomH
	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="Helvetica, Arial, sans-serif" font-size="12">`+"\n",
		wfWidth, height, wfWidth, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="#ffffff"/>`+"\n")
	fmt.Fprintf(&b, `<text x="10" y="22" font-size="15" font-weight="bold">%s</text>`+"\n", esc(title))
	fmt.Fprintf(&b, `<text x="10" y="42" fill="#555">%d spans, %s from the buy to the last span</text>`+"\n", len(rows), fmtDur(total))
	for i := 0; i <= wfTicks; i++ {
		tx := x0 + xw*float64(i)/wfTicks
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#e3e3e3"/>`+"\n", tx, wfTop-8, tx, wfTop+len(rows)*wfRowH)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" fill="#777" font-size="10" text-anchor="middle">%s</text>`+"\n",
			tx, wfTop-12, fmtDur(total*time.Duration(i)/wfTicks))
	}
	for i, r := range rows {
		y := wfTop + i*wfRowH
		if i%2 == 1 {
			fmt.Fprintf(&b, `<rect x="0" y="%d" width="%d" height="%d" fill="#f6f8fa"/>`+"\n", y, wfWidth, wfRowH)
		}
		label := r.Name
		if k := kindLabel(r.Kind); k != "" {
			label += " " + k
		}
		fmt.Fprintf(&b, `<text x="%d" y="%d">%s<tspan fill="#888" font-size="10"> %s</tspan></text>`+"\n",
			10+r.depth*wfIndent, y+15, esc(label), esc(r.Service))
		bx, bw := x(r.Start), max(x(r.End)-x(r.Start), 1.5)
		fmt.Fprintf(&b, `<rect x="%.1f" y="%d" width="%.1f" height="%d" rx="2" fill="%s"><title>%s</title></rect>`+"\n",
			bx, y+(wfRowH-wfBarH)/2, bw, wfBarH, color[component(r.Scope)], esc(r.Name+": "+fmtDur(r.End.Sub(r.Start))))
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" fill="#333" font-size="10">%s</text>`+"\n", bx+bw+4, y+15, fmtDur(r.End.Sub(r.Start)))
	}
	y := wfTop + len(rows)*wfRowH + 20
	lx := 10
	for _, p := range parts {
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="12" height="12" fill="%s"/><text x="%d" y="%d">%s</text>`+"\n",
			lx, y-10, color[p], lx+16, y, esc(p))
		lx += 36 + 7*len(p)
	}
	fmt.Fprintf(&b, `<text x="10" y="%d" fill="#777" font-size="10">%s</text>`+"\n", y+22,
		esc("Real spans of one buy, recorded in memory by go test ./app -run TestTraceOfOneOrder/embedded -trace-svg (gateway/app/tracing_test.go); the layout is a trace viewer's waterfall."))
	b.WriteString("</svg>\n")
	return b.Bytes()
}

func kindLabel(k trace.SpanKind) string {
	switch k {
	case trace.SpanKindServer, trace.SpanKindClient, trace.SpanKindProducer, trace.SpanKindConsumer:
		return "[" + k.String() + "]"
	}
	return ""
}

func fmtDur(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond))
	case d < time.Second:
		return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%.2f s", d.Seconds())
	}
}

func esc(s string) string { return html.EscapeString(s) }

// The renderer draws every span once, under its parent, in well-formed SVG.
func TestTraceWaterfallSVG(t *testing.T) {
	t0 := time.Unix(1700000000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	spans := []span{
		{SpanID: "c", Parent: "b", Name: "orders process", Service: "worker", Kind: trace.SpanKindConsumer, Start: at(5), End: at(9)},
		{SpanID: "a", Name: "POST /buy <&>", Service: "gateway", Kind: trace.SpanKindServer, Start: at(0), End: at(3)},
		{SpanID: "b", Parent: "a", Name: "orders publish", Service: "gateway", Kind: trace.SpanKindProducer, Start: at(1), End: at(2)},
	}
	svg := renderWaterfall(spans, "test")
	dec := xml.NewDecoder(bytes.NewReader(svg))
	var texts []string
	for {
		tok, err := dec.Token()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatalf("not well-formed XML: %v\n%s", err, svg)
			}
			break
		}
		if cd, ok := tok.(xml.CharData); ok {
			texts = append(texts, string(cd))
		}
	}
	all := strings.Join(texts, "\n")
	var order []int
	for _, name := range []string{"POST /buy <&> [server]", "orders publish [producer]", "orders process [consumer]"} {
		i := strings.Index(all, name)
		if i < 0 || strings.Count(all, name) != 1 {
			t.Fatalf("span %q drawn %d times, want once:\n%s", name, strings.Count(all, name), all)
		}
		order = append(order, i)
	}
	if !slices.IsSorted(order) {
		t.Errorf("rows not in tree order (server, its producer, the consumer): %v", order)
	}
}
