package report

import (
	"fmt"
	"html"
	"html/template"
	"math"
	"strings"
)

// series is one line of a line chart; NaN values are gaps.
type series struct {
	Name  string
	Color string
	Y     []float64
}

// Chart geometry.
const (
	chartW, chartH = 720.0, 260.0
	padL, padR     = 64.0, 16.0
	padT, padB     = 28.0, 40.0
)

// band is a stretch of the timeline drawn behind the lines: a fault of a
// chaos run, from From to To (seconds since T0), labelled (its number).
type band struct {
	From, To float64
	Label    string
	Color    string
}

// lineChart draws series over x (seconds since T0), with bands behind
// them. With logY the axis is logarithmic (latencies span four orders of
// magnitude in a spike).
func lineChart(title, unit string, x []int, ss []series, logY bool, bands ...band) template.HTML {
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %.0f %.0f" class="chart" role="img" aria-label="%s">`, chartW, chartH, html.EscapeString(title))
	fmt.Fprintf(&b, `<text x="%.0f" y="16" class="title">%s</text>`, padL, html.EscapeString(title))
	if len(x) == 0 {
		b.WriteString(`<text x="100" y="120">no data</text></svg>`)
		return template.HTML(b.String())
	}
	hi, lo := 0.0, math.Inf(1)
	for _, s := range ss {
		for _, v := range s.Y {
			if !math.IsNaN(v) && v > 0 {
				hi, lo = math.Max(hi, v), math.Min(lo, v)
			}
		}
	}
	if hi == 0 {
		hi, lo = 1, 1
	}
	plotW, plotH := chartW-padL-padR, chartH-padT-padB
	var ymap func(float64) float64
	var ticks []float64
	if logY {
		lo = math.Pow(10, math.Floor(math.Log10(lo)))
		top := math.Pow(10, math.Ceil(math.Log10(hi)))
		if top <= lo {
			top = lo * 10
		}
		ymap = func(v float64) float64 {
			v = math.Max(v, lo)
			return padT + plotH - plotH*(math.Log10(v)-math.Log10(lo))/(math.Log10(top)-math.Log10(lo))
		}
		for t := lo; t <= top*1.0001; t *= 10 {
			ticks = append(ticks, t)
		}
	} else {
		top := niceCeil(hi)
		ymap = func(v float64) float64 { return padT + plotH - plotH*v/top }
		// 1, 2 or 5 times a power of ten: steps of a quarter, a quarter,
		// a fifth, so that every tick is a round number.
		steps := 4
		if m := top / math.Pow(10, math.Floor(math.Log10(top))); math.Abs(m-5) < 1e-9 {
			steps = 5
		}
		for i := 0; i <= steps; i++ {
			ticks = append(ticks, top*float64(i)/float64(steps))
		}
	}
	n := len(x)
	xmap := func(i int) float64 {
		if n == 1 {
			return padL + plotW/2
		}
		return padL + plotW*float64(i)/float64(n-1)
	}
	for _, t := range ticks {
		y := ymap(t)
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" class="grid"/>`, padL, y, chartW-padR, y)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" class="tick" text-anchor="end">%s</text>`, padL-6, y+4, short(t))
	}
	step := max(1, n/12)
	for i := 0; i < n; i += step {
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" class="tick" text-anchor="middle">%ds</text>`, xmap(i), chartH-padB+16, x[i])
	}
	// The bands, by seconds: x holds consecutive seconds, so a time maps
	// between the first and the last linearly (a second's point sits at
	// its start).
	if n > 1 {
		span := float64(x[n-1] - x[0])
		tx := func(t float64) float64 {
			return padL + plotW*math.Min(math.Max((t-float64(x[0]))/span, 0), 1)
		}
		for i, bd := range bands {
			x0, x1 := tx(bd.From), tx(bd.To)
			w := math.Max(x1-x0, 2) // an instant fault is a line
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s" fill-opacity="0.15"><title>fault %s</title></rect>`,
				x0, padT, w, plotH, bd.Color, html.EscapeString(bd.Label))
			// Labels step down so that faults starting close together
			// stay readable.
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" class="tick" fill="%s">%s</text>`, x0+2, padT+10+float64(i%4)*11, bd.Color, html.EscapeString(bd.Label))
		}
	}
	// T0, the start of the sale.
	for i, t := range x {
		if t == 0 {
			fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" class="t0"/><text x="%.1f" y="%.1f" class="tick">T0</text>`,
				xmap(i), padT, xmap(i), chartH-padB, xmap(i)+3, padT+10)
		}
	}
	fmt.Fprintf(&b, `<text x="12" y="%.1f" class="tick" transform="rotate(-90 12 %.1f)" text-anchor="middle">%s</text>`, padT+plotH/2, padT+plotH/2, html.EscapeString(unit))
	for si, s := range ss {
		var pts []string
		flush := func() {
			if len(pts) > 0 {
				fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`, s.Color, strings.Join(pts, " "))
			}
			pts = pts[:0]
		}
		for i, v := range s.Y {
			if math.IsNaN(v) || (logY && v <= 0) {
				flush()
				continue
			}
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", xmap(i), ymap(v)))
		}
		flush()
		lx := padL + 10 + float64(si)*170
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="12" height="4" fill="%s"/><text x="%.1f" y="%.1f" class="tick">%s</text>`,
			lx, chartH-12, s.Color, lx+16, chartH-7, html.EscapeString(s.Name))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// bar is one bar of a bar chart. A NaN Value draws no bar, only the note
// (a figure that is unknown); Color, when set, overrides the chart's.
type bar struct {
	Label string
	Value float64
	Note  string
	Color string
}

// barChart draws horizontal bars, each labelled with its value and, when
// given, its note (a share of the first bar, for the funnel).
func barChart(title string, bars []bar, color string) template.HTML {
	rowH := 26.0
	h := padT + rowH*float64(len(bars)) + 12
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %.0f %.0f" class="chart" role="img" aria-label="%s">`, chartW, h, html.EscapeString(title))
	fmt.Fprintf(&b, `<text x="8" y="16" class="title">%s</text>`, html.EscapeString(title))
	hi := 0.0
	for _, br := range bars {
		if !math.IsNaN(br.Value) {
			hi = math.Max(hi, br.Value)
		}
	}
	labelW, barMax := 250.0, chartW-250-150
	for i, br := range bars {
		y := padT + rowH*float64(i)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" class="tick" text-anchor="end">%s</text>`, labelW-8, y+15, html.EscapeString(br.Label))
		if math.IsNaN(br.Value) {
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" class="tick">%s</text>`, labelW, y+15, html.EscapeString(br.Note))
			continue
		}
		c := color
		if br.Color != "" {
			c = br.Color
		}
		w := 0.0
		if hi > 0 {
			w = math.Max(barMax*br.Value/hi, 1)
		}
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="18" fill="%s"/>`, labelW, y+2, w, c)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" class="tick">%s %s</text>`, labelW+w+6, y+15, short(br.Value), html.EscapeString(br.Note))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

// short formats a number for an axis or a label: 1.2k, 35, 0.5.
func short(v float64) string {
	switch a := math.Abs(v); {
	case a >= 1e6:
		return trim(fmt.Sprintf("%.1f", v/1e6)) + "M"
	case a >= 1e4:
		return trim(fmt.Sprintf("%.0f", v/1e3)) + "k"
	case a >= 1e3:
		return trim(fmt.Sprintf("%.1f", v/1e3)) + "k"
	case a >= 10 || a == 0:
		return fmt.Sprintf("%.0f", v)
	case a >= 1:
		return trim(fmt.Sprintf("%.1f", v))
	default:
		return trim(fmt.Sprintf("%.2f", v))
	}
}

func trim(s string) string {
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}
