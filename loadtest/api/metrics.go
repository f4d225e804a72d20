package api

import (
	"bufio"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
)

// Metrics are the samples of one /metrics scrape, keyed by series:
// the metric name followed by its labels sorted by name, as in
// `seckill_reserve_total{outcome="reserved"}`.
type Metrics map[string]float64

// ParseMetrics reads the Prometheus text format. Only what the load tester
// needs: one sample per line, labels with quoted values; comments and
// timestamps are skipped.
func ParseMetrics(r io.Reader) (Metrics, error) {
	m := Metrics{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		key, rest, err := splitSeries(line)
		if err != nil {
			return nil, fmt.Errorf("metrics line %d: %w", n, err)
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			return nil, fmt.Errorf("metrics line %d: no value in %q", n, line)
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			return nil, fmt.Errorf("metrics line %d: value %q: %w", n, fields[0], err)
		}
		m[key] = v
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read metrics: %w", err)
	}
	return m, nil
}

// splitSeries returns the normalised series key of a sample line and what
// follows it.
func splitSeries(line string) (string, string, error) {
	i := strings.IndexAny(line, "{ ")
	if i < 0 {
		return "", "", fmt.Errorf("no value in %q", line)
	}
	name := line[:i]
	if line[i] == ' ' {
		return name, line[i:], nil
	}
	var labels []string
	rest := line[i+1:]
	for {
		rest = strings.TrimLeft(rest, " ,")
		if strings.HasPrefix(rest, "}") {
			rest = rest[1:]
			break
		}
		eq := strings.Index(rest, "=\"")
		if eq < 0 {
			return "", "", fmt.Errorf("malformed labels in %q", line)
		}
		lname := rest[:eq]
		rest = rest[eq+2:]
		var val strings.Builder
		closed := false
		for j := 0; j < len(rest); j++ {
			if rest[j] == '\\' && j+1 < len(rest) {
				val.WriteByte(rest[j])
				val.WriteByte(rest[j+1])
				j++
				continue
			}
			if rest[j] == '"' {
				rest = rest[j+1:]
				closed = true
				break
			}
			val.WriteByte(rest[j])
		}
		if !closed {
			return "", "", fmt.Errorf("unterminated label value in %q", line)
		}
		labels = append(labels, lname+`="`+val.String()+`"`)
	}
	sort.Strings(labels)
	if len(labels) == 0 {
		return name, rest, nil
	}
	return name + "{" + strings.Join(labels, ",") + "}", rest, nil
}

// Sum adds the samples of metric name whose labels include every one of
// match (`outcome="reserved"`); no match means all of them.
func (m Metrics) Sum(name string, match ...string) float64 {
	var s float64
	for k, v := range m {
		base, labels, _ := strings.Cut(k, "{")
		if base != name {
			continue
		}
		ok := true
		for _, want := range match {
			if !strings.Contains(","+strings.TrimSuffix(labels, "}")+",", ","+want+",") {
				ok = false
				break
			}
		}
		if ok {
			s += v
		}
	}
	return s
}

// Has reports whether any series of metric name exists.
func (m Metrics) Has(name string) bool {
	for k := range m {
		if base, _, _ := strings.Cut(k, "{"); base == name {
			return true
		}
	}
	return false
}

// LabelValues returns the values label takes among the series of metric
// name, sorted: the reasons a counter was incremented for, for example.
func (m Metrics) LabelValues(name, label string) []string {
	seen := map[string]bool{}
	for k := range m {
		base, labels, ok := strings.Cut(k, "{")
		if !ok || base != name {
			continue
		}
		for _, l := range strings.Split(strings.TrimSuffix(labels, "}"), ",") {
			if v, ok := strings.CutPrefix(l, label+`="`); ok {
				seen[strings.TrimSuffix(v, `"`)] = true
			}
		}
	}
	out := make([]string, 0, len(seen))
	for v := range seen {
		out = append(out, v)
	}
	sort.Strings(out)
	return out
}
